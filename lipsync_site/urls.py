from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from lipsync_site import views as site

admin.site.site_header = "Lipsync Studio admin"
admin.site.site_title = "Lipsync Studio admin"
admin.site.index_title = "Team, credits and jobs"

urlpatterns = [
    path("favicon.ico", site.favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "account/password/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "account/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("", include("jobs.urls")),
]
