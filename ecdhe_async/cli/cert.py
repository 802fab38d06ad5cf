"""``ecdhe-async cert``: development certificates (self-signed, or a dev CA and what it issues)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Final

from ._options import EXIT_FAILURE, EXIT_OK, ExampleFormatter, Subparsers, password_from_env

__all__ = ["add_cert", "cmd_cert"]

_CERT_KINDS: Final = {
    # kind: (help, description, example)
    "self-signed": (
        "a self-signed server certificate",
        "Create a self-signed server certificate and its private key (mode 0600). The "
        "certificate is its own trust anchor: clients trust it with --ca-file.",
        "ecdhe-async cert self-signed --hostname api.local\n"
        "  ecdhe-async serve --certfile server.crt --keyfile server.key",
    ),
    "ca": (
        "a development CA",
        "Create a development certificate authority (certificate and 0600 key) that issues "
        "the server and client certificates of a mutual-TLS setup.",
        "ecdhe-async cert ca\n"
        "  ecdhe-async cert server --ca ca.crt --ca-key ca.key --hostname api.local\n"
        "  ecdhe-async cert client --ca ca.crt --ca-key ca.key --common-name alice",
    ),
    "server": (
        "a server certificate issued by a dev CA",
        "Issue a server certificate (serverAuth) signed by a development CA, with its 0600 "
        "key. Clients trust the CA certificate (--ca-file ca.crt).",
        "ecdhe-async cert server --ca ca.crt --ca-key ca.key --hostname api.local",
    ),
    "client": (
        "a client certificate issued by a dev CA",
        "Issue a client certificate (clientAuth) for mutual TLS, signed by a development CA, "
        "with its 0600 key. Servers trust the CA (serve --ca-file ca.crt --client-auth "
        "required).",
        "ecdhe-async cert client --ca ca.crt --ca-key ca.key --common-name alice",
    ),
}


def _key_types() -> list[str]:
    from ..certs import KEY_TYPES

    return list(KEY_TYPES)


def add_cert(sub: Subparsers) -> None:
    """Add the ``cert`` command and one subcommand per kind of certificate."""
    cert = sub.add_parser(
        "cert",
        help="create development certificates",
        formatter_class=ExampleFormatter,
        description="Create a self-signed certificate, or a development CA and certificates "
        "it issues (for mTLS). Private keys are written 0600; existing files are never "
        "replaced without --force.",
        epilog="example (mutual TLS):\n  " + _CERT_KINDS["ca"][2],
    )
    cert_sub = cert.add_subparsers(dest="cert_command", required=True, metavar="KIND")
    for kind, (summary, description, example) in _CERT_KINDS.items():
        p = cert_sub.add_parser(
            kind,
            help=summary,
            description=description,
            epilog=f"example:\n  {example}",
            formatter_class=ExampleFormatter,
        )
        stem = "server" if kind == "self-signed" else kind
        if kind in ("server", "client"):
            p.add_argument("--ca", required=True, metavar="PEM", help="CA certificate file")
            p.add_argument("--ca-key", required=True, metavar="PEM", help="CA private key file")
            p.add_argument(
                "--ca-password-env",
                metavar="VAR",
                help="the CA key's password is in this environment variable",
            )
        p.add_argument("--out", default=f"{stem}.crt", metavar="PEM", help="certificate file")
        p.add_argument("--key-out", default=f"{stem}.key", metavar="PEM", help="private key file")
        _cert_options(p, kind)


def _cert_options(p: argparse.ArgumentParser, kind: str) -> None:
    if kind == "ca":
        p.add_argument("--name", default="ecdhe_async dev CA", help="CA common name")
    else:
        default_sans = "none" if kind == "client" else "localhost, 127.0.0.1, ::1"
        p.add_argument(
            "--hostname",
            action="append",
            dest="hostnames",
            metavar="NAME",
            help=f"subject alternative name, DNS name or IP (repeatable; default: {default_sans})",
        )
        if kind == "client":
            p.add_argument(
                "--common-name", default="ecdhe_async dev client", help="subject common name"
            )
        else:
            p.add_argument("--common-name", help="subject common name (default: first hostname)")
    p.add_argument("--key-type", default="ec-p256", choices=_key_types(), help="key type")
    p.add_argument(
        "--days", type=int, default=3650 if kind == "ca" else 365, help="validity in days"
    )
    p.add_argument(
        "--key-password-env",
        metavar="VAR",
        help="encrypt the private key with the password in this environment variable",
    )
    p.add_argument(
        "--force", action="store_true", help="replace the certificate and key files if they exist"
    )


def cmd_cert(args: argparse.Namespace) -> int:
    """Run ``cert KIND``: write the certificate and its 0600 key, then describe them."""
    from ..certs import CertificateExistsError, DevCA, create_self_signed_cert, describe_certificate

    password = password_from_env(getattr(args, "key_password_env", None))
    kind = args.cert_command
    paths: dict[str, Any] = {"cert_file": args.out, "key_file": args.key_out}
    try:
        if kind == "ca":
            ca = DevCA.create(args.name, key_type=args.key_type, days=args.days)
            cert_path, key_path = ca.save(**paths, password=password, overwrite=args.force)
        else:
            extra: dict[str, Any] = {"key_type": args.key_type, "days": args.days}
            if args.hostnames:
                extra["hostnames"] = args.hostnames
            if args.common_name:
                extra["common_name"] = args.common_name
            if password:
                extra["key_password"] = password
            extra.update(paths, overwrite=args.force)
            if kind == "self-signed":
                cert_path, key_path = create_self_signed_cert(**extra)
            else:
                ca = DevCA.load(args.ca, args.ca_key, password_from_env(args.ca_password_env))
                issue = ca.issue_server_cert if kind == "server" else ca.issue_client_cert
                cert_path, key_path = issue(**extra)
    except CertificateExistsError as exc:
        print(f"ecdhe-async: {exc} (pass --force to replace it)", file=sys.stderr)
        return EXIT_FAILURE
    rows = {"certificate": str(cert_path), "private key": f"{key_path} (mode 0600)"}
    rows.update(describe_certificate(cert_path).as_dict())
    width = max(map(len, rows))
    for key, value in rows.items():
        print(f"{key:<{width}}  {value or '(none)'}")
    return EXIT_OK
