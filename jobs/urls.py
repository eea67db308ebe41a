from django.urls import path

from .views import account, media, studio, webhooks

urlpatterns = [
    path("", studio.studio, name="studio"),
    path("studio/form/", studio.studio_form, name="studio_form"),
    path("studio/uploads/<str:role>/", studio.upload, name="studio_upload"),
    path("studio/quote/", studio.quote, name="studio_quote"),
    path("studio/jobs/", studio.job_new, name="job_new"),
    path("studio/cards/", studio.cards, name="studio_cards"),
    path("studio/jobs/<int:pk>/cancel/", studio.job_cancel, name="job_cancel"),
    path("studio/jobs/<int:pk>/retry/", studio.job_retry, name="job_retry"),
    path("studio/jobs/<int:pk>/delete/", studio.job_delete, name="job_delete"),
    path("jobs/<int:pk>/video.mp4", media.job_video, name="job_video"),
    path("jobs/<int:pk>/thumbnail.webp", media.job_thumbnail, name="job_thumbnail"),
    # Providers fetch inputs here: no session, the signed token is the key.
    path("inputs/<str:token>/<str:name>", media.job_input, name="job_input"),
    path(
        "webhooks/<slug:provider>/<str:token>/",
        webhooks.provider_webhook,
        name="provider_webhook",
    ),
    path("gallery/", studio.gallery, name="gallery"),
    path("credits/", account.credits, name="credits"),
    path("api-keys/", account.api_keys, name="api_keys"),
    path("api-keys/<int:key_id>/revoke/", account.api_key_revoke, name="api_key_revoke"),
]
