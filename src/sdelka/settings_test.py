"""Settings for the test suite: the production settings with test-only conveniences."""

import os

os.environ.setdefault("SDELKA_TESTING", "1")
os.environ.setdefault("SDELKA_HUEY_NAME", f"sdelka-test-{os.getpid()}")
os.environ.setdefault("SDELKA_DATA_DIR", os.path.join(os.getcwd(), "var", "test"))

from sdelka.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AXES_ENABLED = False
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_AUTOREFRESH = True
# Tests assert messages by their English source text; tests of the Russian interface ask for it
# explicitly (Accept-Language: ru, or translation.override("ru")).
LANGUAGE_CODE = "en"
