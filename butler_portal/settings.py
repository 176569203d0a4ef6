"""One settings module for every deployment, driven by environment variables.

With no environment at all the portal runs *embedded*: SQLite, an in-process channel
layer and tasks executed without a broker, so a fresh checkout starts with one command.
Setting ``DATABASE_URL`` and ``REDIS_URL`` (plus ``SECRET_KEY`` and ``ALLOWED_HOSTS`` with
``DEBUG=false``) turns it into the production shape: Postgres, channels-redis, Celery on
Redis. docs/configuration.md lists every variable.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(__file__).resolve().parent
#: Running from the repository (make run, the tests) rather than from an installed wheel.
CHECKOUT = (BASE_DIR / "pyproject.toml").is_file()
# The browser files sit at the top of a checkout; a wheel carries them inside the package
# (pyproject.toml maps them there), so an installed portal finds them beside this file.
TEMPLATES_DIR = BASE_DIR / "templates" if CHECKOUT else PACKAGE_DIR / "templates"
STATIC_DIR = BASE_DIR / "static" if CHECKOUT else PACKAGE_DIR / "static"
# The embedded default's state (SQLite, the local Kubernetes API). Never inside an installed
# package: site-packages may be read-only and is replaced by the next install.
VAR_DIR = Path(
    os.environ.get("BUTLER_VAR_DIR")
    or (
        BASE_DIR / "var"
        if CHECKOUT
        else Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
        / "butler-portal"
    )
)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if not raw:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")
EMBEDDED = not DATABASE_URL

DEBUG = env_bool("DEBUG", default=EMBEDDED)

_DEV_SECRET_KEY = "embedded-development-key-never-use-in-production-0123456789abcdef"
SECRET_KEY = os.environ.get("SECRET_KEY", _DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
# Rotation: the previous keys, comma-separated. Sessions, password-reset links and VM user
# data (vms/crypto.py) made under them stay valid; new ones use SECRET_KEY.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "servestatic",  # its configuration checks; the middleware serves the files
    "channels",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "django_htmx",
    "axes",
    "butler_portal",  # shared plumbing: management commands (serve, watcher, simulator)
    "tenants",
    "clusters",
    "vms",
]

MIDDLEWARE = [
    # First: probes answer whatever the Host header and scheme (butler_portal/health.py).
    "butler_portal.health.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # The portal's own 403 and 404 pages even with DEBUG on (no URL patterns shown).
    "butler_portal.errors.ErrorPagesMiddleware",
    # Last, as django-axes requires: it turns a lockout signal into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "butler_portal.urls"
ASGI_APPLICATION = "butler_portal.asgi.application"
WSGI_APPLICATION = "butler_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [TEMPLATES_DIR],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenants.context_processors.portal",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
if EMBEDDED:
    # SQLite needs its folder before the first connection. Only the embedded default makes
    # it: a production process (DATABASE_URL set) never writes to the filesystem here, so it
    # runs on a read-only root filesystem.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL or f"sqlite:///{VAR_DIR / 'portal.sqlite3'}",
        # 0: under ASGI every request runs on its own thread, so "persistent" connections
        # pile up instead of being reused (measured in bench/results/live_updates.md).
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
#: Postgres connections the process keeps open and lends out (psycopg's pool, Django >= 5.1);
#: 0 opens one per request. For the web process: under ASGI every request and every websocket's
#: database call runs on a short-lived thread, so without a pool each pays for a new connection
#: (bench/results/console_echo.md). Not for forking processes (Celery's prefork workers).
DB_POOL_SIZE = env_int("DB_POOL_SIZE", 0)
if DB_POOL_SIZE and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    if DATABASES["default"]["CONN_MAX_AGE"]:
        raise ImproperlyConfigured("DB_POOL_SIZE replaces DB_CONN_MAX_AGE: set that one to 0.")
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_SIZE,
        "timeout": 10,  # seconds to wait for a free connection before failing the request
    }
if os.environ.get("TEST_DATABASE_NAME"):
    # Lets several test runs share one Postgres server without dropping each other's database.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}
if EMBEDDED:
    # SQLite serialises writers; a generous timeout turns lock contention into waiting.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = [
    # django-axes first, so a locked-out username is refused before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# django-axes: after repeated failures lock the username (whatever the address) and the
# address (whatever the username, against password spraying).
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("LOGIN_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# --- Internationalisation ---------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------------
STATIC_URL = "static/"
# Where collectstatic writes and, with DEBUG off, where the files are served from (the image
# collects them at build time and sets this). Not created here: collectstatic makes it, and
# with DEBUG on the files come from the finders, so nothing needs it to exist.
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or VAR_DIR / "static")
STATICFILES_DIRS = [STATIC_DIR]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "servestatic.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Embedded and test runs serve files straight from the finders, no collectstatic step.
SERVESTATIC_USE_FINDERS = DEBUG
SERVESTATIC_AUTOREFRESH = DEBUG

# --- Channels ---------------------------------------------------------------------------
if REDIS_URL:
    # The pub/sub layer: the default core layer ran out of Redis connections at 1,000
    # websockets in the design measurements, the pub/sub one delivered at p99 ≈ 10 ms.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            # Redis pub/sub ignores the database number: a prefix keeps deployments (and
            # parallel test runs) sharing one Redis out of each other's groups.
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": os.environ.get("CHANNEL_LAYER_PREFIX", "asgi"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery -----------------------------------------------------------------------------
# Without Redis (the embedded default) tasks go to an in-process broker, and `manage.py
# serve` runs a worker thread beside the web server (butler_portal/embedded.py), so a task
# that retries waits its backoff for real instead of failing the request. The test suite
# sets CELERY_TASK_ALWAYS_EAGER=true: tasks then run inside the request that queued them.
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_BROKER_TRANSPORT_OPTIONS = {} if REDIS_URL else {"polling_interval": 0.1}
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
#: ``manage.py serve`` starts its own worker thread (no Redis, tasks not run eagerly).
EMBEDDED_TASK_WORKER = not REDIS_URL and not CELERY_TASK_ALWAYS_EAGER
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "butler"

# --- REST API ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "tenants.api.permissions.TokenScopePermission",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "tenants.api.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"anon": "60/minute"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Butler Portal API",
    "DESCRIPTION": "Self-service Kubernetes clusters and virtual machines on bare metal.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Choice sets that share a field name need a name of their own in the schema.
    "ENUM_NAME_OVERRIDES": {
        "InvitationStatusEnum": "tenants.api.serializers.INVITATION_STATUSES",
        "ApiTokenStatusEnum": "tenants.api.serializers.API_TOKEN_STATUSES",
        "TenantStateEnum": "tenants.models.Tenant.State",
        "TenantNetworkStateEnum": "tenants.models.TenantNetwork.State",
        "ClusterStepStateEnum": "clusters.models.ClusterStep.State",
        "ClusterPhaseEnum": "clusters.models.Cluster.Phase",
        "KubernetesVersionStatusEnum": "clusters.models.KubernetesVersion.Status",
        "VirtualMachineStateEnum": "vms.models.VirtualMachine.State",
        "VMServiceStateEnum": "vms.models.VMService.State",
    },
}

# --- Portal behaviour -------------------------------------------------------------------
INVITATION_LIFETIME_HOURS = env_int("INVITATION_LIFETIME_HOURS", 72)
API_TOKEN_MAX_LIFETIME_DAYS = env_int("API_TOKEN_MAX_LIFETIME_DAYS", 365)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "butler-portal@localhost")
if os.environ.get("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = os.environ["EMAIL_HOST"]
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    INVITATION_EMAILS_ENABLED = True
else:
    INVITATION_EMAILS_ENABLED = False

# --- Kubernetes ---------------------------------------------------------------------------
# embedded | kubeconfig | in-cluster | off (see butler_portal/kube/__init__.py)
KUBE_MODE = os.environ.get("KUBE_MODE", "embedded" if EMBEDDED else "in-cluster")
if KUBE_MODE not in {"embedded", "kubeconfig", "in-cluster", "off"}:
    raise ImproperlyConfigured(
        f"KUBE_MODE={KUBE_MODE!r}: use embedded, kubeconfig, in-cluster or off"
    )
EMBEDDED_KUBE_DIR = VAR_DIR / "k8s"
# Modules whose status_handlers() tell the watcher what to follow (see tenants/status.py).
WATCHER_HANDLER_MODULES = ["tenants.status"]
KUBECONFIG = os.environ.get("KUBECONFIG") or (
    str(EMBEDDED_KUBE_DIR / "kubeconfig") if KUBE_MODE == "embedded" else ""
)
TENANT_NAMESPACE_PREFIX = os.environ.get("TENANT_NAMESPACE_PREFIX", "tenant-")
METALLB_NAMESPACE = os.environ.get("METALLB_NAMESPACE", "metallb-system")
# Where tenant subnets come from until an operator defines subnet pools in the console.
TENANT_SUBNET_SUPERNET = os.environ.get("TENANT_SUBNET_SUPERNET", "10.200.0.0/16")
TENANT_SUBNET_PREFIX_LENGTH = env_int("TENANT_SUBNET_PREFIX_LENGTH", 24)
# Allowance on top of the portal quota in each tenant's ResourceQuota, for what runs beside
# the tenant's workloads (KubeVirt launcher overhead, Kamaji control-plane pods).
KUBE_QUOTA_OVERHEAD_PERCENT = env_int("KUBE_QUOTA_OVERHEAD_PERCENT", 10)
KUBE_CONTROL_PLANE_CPU_MILLI = env_int("KUBE_CONTROL_PLANE_CPU_MILLI", 1500)
KUBE_CONTROL_PLANE_MEMORY_MIB = env_int("KUBE_CONTROL_PLANE_MEMORY_MIB", 2048)
WATCHER_HANDLER_MODULES += ["clusters.status"]
# The watcher (manage.py watch). Replicas elect a leader on the Lease "butler-portal-watcher"
# in this namespace (deployments set it to the portal's own); one embedded process needs none.
WATCHER_LEADER_ELECTION = env_bool("WATCHER_LEADER_ELECTION", not EMBEDDED)
WATCHER_LEASE_NAMESPACE = os.environ.get("WATCHER_LEASE_NAMESPACE", "butler-portal")
# client-go's leaderelection defaults; the deadline must be below the duration.
WATCHER_LEASE_DURATION_SECONDS = env_int("WATCHER_LEASE_DURATION_SECONDS", 15)
WATCHER_RENEW_DEADLINE_SECONDS = env_int("WATCHER_RENEW_DEADLINE_SECONDS", 10)
WATCHER_RETRY_PERIOD_SECONDS = env_int("WATCHER_RETRY_PERIOD_SECONDS", 2)
# Compare the portal with the cluster (repair what is missing, report orphans); 0 = never.
WATCHER_RECONCILE_MINUTES = env_int("WATCHER_RECONCILE_MINUTES", 10)

# --- Tenant clusters (Cluster API + Kamaji + KubeVirt) -------------------------------------
# Networks inside each tenant cluster (they never leave it, so every cluster may use them).
CLUSTER_POD_CIDR = os.environ.get("CLUSTER_POD_CIDR", "10.244.0.0/16")
CLUSTER_SERVICE_CIDR = os.environ.get("CLUSTER_SERVICE_CIDR", "10.96.0.0/16")
CLUSTER_DNS_DOMAIN = os.environ.get("CLUSTER_DNS_DOMAIN", "cluster.local")
# Worker boot image per Kubernetes version, unless the version's catalog entry names one.
CLUSTER_NODE_IMAGE = os.environ.get(
    "CLUSTER_NODE_IMAGE", "quay.io/capk/ubuntu-2404-container-disk:{version}"
)
# StorageClass of worker root disks ("" = the infrastructure's default, e.g. LINSTOR's).
CLUSTER_WORKER_STORAGE_CLASS = os.environ.get("CLUSTER_WORKER_STORAGE_CLASS", "")
# Kamaji DataStore for control planes ("" = Kamaji's own default).
KAMAJI_DATASTORE = os.environ.get("KAMAJI_DATASTORE", "")
CLUSTER_DEFAULT_INSTANCE_TYPE = os.environ.get("CLUSTER_DEFAULT_INSTANCE_TYPE", "m1.medium")
# Personal kubeconfigs: certificate lifetime and the groups the tenant clusters bind.
CLUSTER_KUBECONFIG_LIFETIME_HOURS = env_int("CLUSTER_KUBECONFIG_LIFETIME_HOURS", 8)
CLUSTER_ADMIN_GROUP = os.environ.get("CLUSTER_ADMIN_GROUP", "butler:cluster-admins")
CLUSTER_VIEWER_GROUP = os.environ.get("CLUSTER_VIEWER_GROUP", "butler:viewers")

# --- Virtual machines (KubeVirt + CDI) -----------------------------------------------------
WATCHER_HANDLER_MODULES += ["vms.status"]
# Defaults of the create form (and of API requests that leave them out).
VM_DEFAULT_IMAGE = os.environ.get("VM_DEFAULT_IMAGE", "ubuntu-24.04")
VM_DEFAULT_INSTANCE_TYPE = os.environ.get("VM_DEFAULT_INSTANCE_TYPE", "m1.small")
VM_DEFAULT_DISK_GIB = env_int("VM_DEFAULT_DISK_GIB", 20)
# Cloud-init user data a tenant may add to a VM (kept in a Secret, encrypted in the database).
VM_USER_DATA_MAX_BYTES = env_int("VM_USER_DATA_MAX_BYTES", 32768)

# --- Security (production) ---------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
CSRF_FAILURE_VIEW = "butler_portal.errors.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# --- Logging ----------------------------------------------------------------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Request bodies and tokens never reach logs; Django's request logger only
        # records paths and status codes.
        "django.request": {"level": "WARNING"},
        "kubernetes": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
