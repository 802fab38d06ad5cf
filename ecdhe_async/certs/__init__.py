"""Development certificates and private-key handling, built on ``cryptography`` (no OpenSSL CLI).

One module per job:

* :mod:`~ecdhe_async.certs.files` writes keys and certificates atomically: a private key is
  ``0600`` from the moment it exists, a certificate ``0644``, and an existing file is never
  replaced unless the caller passes ``overwrite=True``.
* :mod:`~ecdhe_async.certs.loading` loads and checks them (:func:`load_private_key`,
  :func:`load_certificate`, :func:`check_key_pair`, :func:`describe_certificate`), turning every
  failure into a :class:`~ecdhe_async.errors.CertificateError` that names the file.
* :mod:`~ecdhe_async.certs.issue` generates keys and certificates: :func:`create_self_signed_cert`
  and :class:`DevCA`, a throw-away CA for mutual TLS.
* :mod:`~ecdhe_async.certs.devcache` keeps the per-user development certificate that ``serve``
  uses when none is configured (:func:`dev_certificate`).

Passwords may be ``str``, ``bytes`` or anything with a ``get_secret_value()`` method (such as
pydantic's ``SecretStr``); neither passwords nor key material ever appear in logs, messages or
reprs.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_HOSTNAMES",
    "KEY_TYPES",
    "CertInfo",
    "CertificateExistsError",
    "DevCA",
    "KeyType",
    "PasswordLike",
    "PrivateKey",
    "StrPath",
    "SupportsSecretValue",
    "check_key_pair",
    "create_self_signed_cert",
    "default_cache_dir",
    "describe_certificate",
    "dev_certificate",
    "fingerprint",
    "generate_private_key",
    "is_group_or_world_readable",
    "is_world_readable",
    "load_certificate",
    "load_certificates",
    "load_private_key",
    "write_certificate",
    "write_private_key",
]

from ._util import DEFAULT_HOSTNAMES as DEFAULT_HOSTNAMES
from ._util import KEY_TYPES as KEY_TYPES
from ._util import KeyType as KeyType
from ._util import PasswordLike as PasswordLike
from ._util import PrivateKey as PrivateKey
from ._util import StrPath as StrPath
from ._util import SupportsSecretValue as SupportsSecretValue
from .devcache import default_cache_dir as default_cache_dir
from .devcache import dev_certificate as dev_certificate
from .files import CertificateExistsError as CertificateExistsError
from .files import write_certificate as write_certificate
from .files import write_private_key as write_private_key
from .issue import DevCA as DevCA
from .issue import create_self_signed_cert as create_self_signed_cert
from .issue import generate_private_key as generate_private_key
from .loading import CertInfo as CertInfo
from .loading import check_key_pair as check_key_pair
from .loading import describe_certificate as describe_certificate
from .loading import fingerprint as fingerprint
from .loading import is_group_or_world_readable as is_group_or_world_readable
from .loading import is_world_readable as is_world_readable
from .loading import load_certificate as load_certificate
from .loading import load_certificates as load_certificates
from .loading import load_private_key as load_private_key
