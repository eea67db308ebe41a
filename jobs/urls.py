from django.urls import include, path

from jobs.accounts import views as account
from jobs.api import views as api_pages
from jobs.api import webhooks_views as key_webhooks
from jobs.gallery import views as gallery
from jobs.pipeline import views as webhooks
from jobs.studio import file_views as media
from jobs.studio import job_views
from jobs.studio import views as studio

urlpatterns = [
    path("", studio.studio, name="studio"),
    path("studio/form/", studio.studio_form, name="studio_form"),
    path("studio/uploads/<str:role>/", studio.upload, name="studio_upload"),
    path("studio/quote/", studio.quote, name="studio_quote"),
    path("studio/provider/", studio.provider_changed, name="studio_provider"),
    path("studio/jobs/", studio.job_new, name="job_new"),
    path("studio/cards/", studio.cards, name="studio_cards"),
    path("studio/jobs/<int:pk>/cancel/", studio.job_cancel, name="job_cancel"),
    path("studio/jobs/<int:pk>/retry/", studio.job_retry, name="job_retry"),
    path("studio/jobs/<int:pk>/delete/", studio.job_delete, name="job_delete"),
    path("studio/jobs/<int:pk>/stop/", studio.job_stop_waiting, name="job_stop_waiting"),
    path("studio/starter-credits/", studio.starter_credits, name="studio_starter_credits"),
    path("studio/jobs/<int:pk>/share/", gallery.job_share, name="job_share"),
    path("jobs/<int:pk>/", job_views.job_page, name="job_page"),
    path("jobs/<int:pk>/remix/", job_views.job_remix_own, name="job_remix"),
    path("jobs/<int:pk>/video.mp4", media.job_video, name="job_video"),
    path("jobs/<int:pk>/thumbnail.webp", media.job_thumbnail, name="job_thumbnail"),
    path("jobs/<int:pk>/poster.webp", media.job_poster, name="job_poster"),
    path("jobs/<int:pk>/inputs/<str:role>", media.job_input_media, name="job_input_media"),
    # Providers fetch inputs here: no session, the signed token is the key.
    path("inputs/<str:token>/<str:name>", media.job_input, name="job_input"),
    path(
        "webhooks/<slug:provider>/<str:token>/",
        webhooks.provider_webhook,
        name="provider_webhook",
    ),
    path("gallery/", gallery.gallery, name="gallery"),
    path("gallery/<int:pk>/", gallery.gallery_detail, name="gallery_detail"),
    path("gallery/<int:pk>/remix/", gallery.gallery_remix, name="gallery_remix"),
    path("credits/", account.credits, name="credits"),
    path("credits/ledger.csv", account.credits_ledger_csv, name="credits_ledger_csv"),
    path("api-keys/", account.api_keys, name="api_keys"),
    path("api-keys/<int:key_id>/revoke/", account.api_key_revoke, name="api_key_revoke"),
    path("api-keys/<int:key_id>/limits/", account.api_key_limits, name="api_key_limits"),
    # The page about the REST API; not under /api/ (whose errors are JSON).
    path("developers/", api_pages.api_guide_page, name="api_guide"),
    path("api-keys/<int:key_id>/webhooks/", key_webhooks.key_webhooks, name="api_key_webhooks"),
    path(
        "api-keys/<int:key_id>/webhooks/test/",
        key_webhooks.key_webhook_test,
        name="api_key_webhook_test",
    ),
    path(
        "api-keys/<int:key_id>/webhooks/rotate/",
        key_webhooks.key_webhook_rotate,
        name="api_key_webhook_rotate",
    ),
    path(
        "api-keys/<int:key_id>/webhooks/<int:delivery_id>/resend/",
        key_webhooks.key_webhook_resend,
        name="api_key_webhook_resend",
    ),
    # The REST API: /api/v1/ (lipsync.studio's contract) and /v1/ (JoyPix's).
    path("", include("jobs.api.urls")),
]
