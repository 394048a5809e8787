"""Settings of the test project: no database, no templates, no apps."""

SECRET_KEY = "blastbeat-e2e-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "djproject.urls"
INSTALLED_APPS = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES = {}
TEMPLATES = []
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
# Keep uploads in memory up to 1 MB (the tests' are smaller).
FILE_UPLOAD_MAX_MEMORY_SIZE = 1 << 20
LOGGING_CONFIG = None
