"""The REST API: the lipsync.studio contract under /api/v1/ and JoyPix's
under /v1/, spoken by the studio itself so a script written for either works
by changing its base URL and key; jobs made here spend the member's API
credits and show on their Studio cards.

Built on django-ninja (typed schemas, a generated OpenAPI document). It may
import services and models from jobs.credits, jobs.pipeline, jobs.studio,
jobs.accounts, jobs.files and jobs.net (and jobs.providers.catalogue, for
what each provider makes); never their views.
"""
