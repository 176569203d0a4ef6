"""The package list, which pyproject.toml cannot express.

templates/ and static/ stay at the top of the repository, where people look for them, and
travel inside the package in a wheel (``butler_portal/templates``, ``butler_portal/static``),
so an installed portal finds them beside its settings and no top-level ``templates`` or
``static`` package lands in site-packages. pyproject.toml maps the two folders there
(``package-dir``); this lists their subfolders as (namespace) packages, because setuptools only
ships a folder's files as package data when the folder is itself a listed package, and its
automatic discovery cannot see folders that a mapping moves.
"""

from setuptools import find_namespace_packages, find_packages, setup


def mapped(package: str, folder: str) -> list[str]:
    """``package`` and every subfolder of ``folder`` as a package below it."""
    return [package, *(f"{package}.{sub}" for sub in find_namespace_packages(where=folder))]


setup(
    packages=[
        *find_packages(include=["butler_portal*", "tenants*", "clusters*", "vms*"]),
        "butler_portal.kube.crds",  # CRD YAML files in folders named after their API groups
        *mapped("butler_portal.templates", "templates"),
        *mapped("butler_portal.static", "static"),
    ]
)
