from django.urls import path

from .views import account, studio

urlpatterns = [
    path("", studio.studio, name="studio"),
    path("gallery/", studio.gallery, name="gallery"),
    path("credits/", account.credits, name="credits"),
    path("api-keys/", account.api_keys, name="api_keys"),
    path("api-keys/<int:key_id>/revoke/", account.api_key_revoke, name="api_key_revoke"),
]
