"""The deployment's policy (``facetrace policy``): read by staff, changed by an admin, each change audited."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field, JsonValue

from facetrace.governance.deployment_policy import DeploymentPolicy
from facetrace.server.common.auth import Acting
from facetrace.server.common.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/api/v1/policy", tags=["policy"], responses=PROBLEM_RESPONSES)


class PolicyChange(BaseModel):
    name: str = Field(description="The setting, as GET /api/v1/policy names it.")
    value: JsonValue = Field(description="Its new value (null: no limit, where a setting allows it).")


class PolicyChanged(BaseModel):
    name: str
    old: JsonValue
    new: JsonValue


@router.get("", response_model=DeploymentPolicy)
def show(gov: Acting) -> DeploymentPolicy:
    """Every setting of the deployment's policy, as every process of the deployment applies it."""
    return gov.policy.show()


@router.put("", response_model=PolicyChanged)
def change(gov: Acting, body: PolicyChange) -> PolicyChanged:
    """Change one setting (admin): checked (type, range, allowed values, finite) and audited with
    its old and new value."""
    old, new = gov.policy.change(body.name, body.value)
    return PolicyChanged(name=body.name, old=old, new=new)
