"""Loaders: real Mixpanel and mParticle exports into the canonical tables (``cohortlab.schema``).

One module per input kind; ``LOADERS`` maps the CLI kind to its class. See ``base.py`` for the
guarantees every load gives (all-or-nothing, idempotent, quarantine, streaming).
"""

from __future__ import annotations

from importlib import import_module

from cohortlab.errors import LoadError, StrictLoadError
from cohortlab.loaders.base import FileResult, Loader, LoadReport

# kind -> "module:Class" (imported on first use)
LOADERS: dict[str, str] = {
    "mixpanel-events": "cohortlab.loaders.mixpanel_events:MixpanelEventsLoader",
    "mixpanel-profiles": "cohortlab.loaders.mixpanel_profiles:MixpanelProfilesLoader",
    "mixpanel-cohorts": "cohortlab.loaders.mixpanel_cohorts:MixpanelCohortsLoader",
    "mixpanel-members": "cohortlab.loaders.mixpanel_members:MixpanelMembersLoader",
    "mixpanel-webhooks": "cohortlab.loaders.mixpanel_webhooks:MixpanelWebhooksLoader",
    "mparticle-profiles": "cohortlab.loaders.mparticle_profiles:MParticleProfilesLoader",
    "mparticle-batches": "cohortlab.loaders.mparticle_batches:MParticleBatchesLoader",
    "mparticle-csv": "cohortlab.loaders.mparticle_csv:MParticleCsvLoader",
    # warehouse exports (JSON or Parquet)
    "mixpanel-pipeline-events": "cohortlab.loaders.mixpanel_pipelines:MixpanelPipelineEventsLoader",
    "mixpanel-pipeline-profiles": "cohortlab.loaders.mixpanel_pipelines:MixpanelPipelineProfilesLoader",
    "mparticle-parquet": "cohortlab.loaders.mparticle_parquet:MParticleParquetLoader",
}


def loader_class(kind: str) -> type[Loader]:
    try:
        target = LOADERS[kind]
    except KeyError:
        from cohortlab.errors import SettingsError

        raise SettingsError(f"unknown load kind {kind!r}; expected one of {', '.join(LOADERS)}") from None
    module, cls = target.split(":")
    return getattr(import_module(module), cls)


__all__ = ["LOADERS", "loader_class", "Loader", "LoadError", "LoadReport", "FileResult", "StrictLoadError"]
