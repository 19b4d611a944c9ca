"""
The built-in resources the emulator serves, as the real API server lists them
in discovery (kind, singular name, short names, categories, scope).

Only the kinds our operator, Kopf and kubectl touch are here: namespaces,
events (both APIs: Kopf posts ``v1`` Events, ``kubectl describe`` lists them),
config maps, secrets, service accounts, pods, services, jobs, cron jobs,
leases, and CRDs. They are stored and served as opaque JSON: no defaulting,
no validation, and no controllers (a Job never runs a Pod; a CronJob never
fires) — tests drive those by hand.
"""

from __future__ import annotations

from kube_emulator import resources

RT = resources.ResourceType

NAMESPACES = RT(
    group="",
    version="v1",
    plural="namespaces",
    singular="namespace",
    kind="Namespace",
    namespaced=False,
    short_names=("ns",),
    has_status=True,
)
CRDS = RT(
    group="apiextensions.k8s.io",
    version="v1",
    plural="customresourcedefinitions",
    singular="customresourcedefinition",
    kind="CustomResourceDefinition",
    namespaced=False,
    short_names=("crd", "crds"),
    has_status=True,
)
CORE_EVENTS = RT(group="", version="v1", plural="events", singular="event", kind="Event", short_names=("ev",))

BUILTIN_TYPES: tuple[resources.ResourceType, ...] = (
    NAMESPACES,
    CORE_EVENTS,
    RT(
        group="",
        version="v1",
        plural="configmaps",
        singular="configmap",
        kind="ConfigMap",
        short_names=("cm",),
    ),
    RT(group="", version="v1", plural="secrets", singular="secret", kind="Secret"),
    RT(
        group="",
        version="v1",
        plural="serviceaccounts",
        singular="serviceaccount",
        kind="ServiceAccount",
        short_names=("sa",),
    ),
    RT(
        group="",
        version="v1",
        plural="pods",
        singular="pod",
        kind="Pod",
        short_names=("po",),
        categories=("all",),
        has_status=True,
    ),
    RT(
        group="",
        version="v1",
        plural="services",
        singular="service",
        kind="Service",
        short_names=("svc",),
        categories=("all",),
        has_status=True,
    ),
    RT(
        group="events.k8s.io",
        version="v1",
        plural="events",
        singular="event",
        kind="Event",
        short_names=("ev",),
    ),
    RT(
        group="batch",
        version="v1",
        plural="jobs",
        singular="job",
        kind="Job",
        categories=("all",),
        has_status=True,
    ),
    RT(
        group="batch",
        version="v1",
        plural="cronjobs",
        singular="cronjob",
        kind="CronJob",
        short_names=("cj",),
        categories=("all",),
        has_status=True,
    ),
    RT(group="coordination.k8s.io", version="v1", plural="leases", singular="lease", kind="Lease"),
    CRDS,
)

# Namespaces that exist in every cluster from the start.
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public")
