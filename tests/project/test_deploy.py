"""The deployment files cannot be run here (no container runtime); at least every Facetrace
setting they name must exist, so a typo does not silently fall back to a default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from facetrace.core.config import Settings

# Never opens a catalog (reads the deployment files): the --catalog postgres pass skips it.
pytestmark = pytest.mark.no_catalog

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def named_settings(text: str) -> set[str]:
    return {name.lower() for name in re.findall(r"\bFACETRACE_([A-Z_]+)\b", text)}


def test_every_setting_the_deployment_names_exists() -> None:
    compose = (DEPLOY / "docker-compose.yml").read_text()
    services = yaml.safe_load(compose)["services"]
    assert {"api", "postgres", "milvus"} <= set(services)
    named = named_settings(compose) | named_settings((DEPLOY / "facetrace.env.example").read_text())
    named |= named_settings((DEPLOY / "Dockerfile").read_text())
    assert named and named <= set(Settings.model_fields), named - set(Settings.model_fields)
    assert services["api"]["environment"]["FACETRACE_VECTOR_STORE"] == "milvus"
