"""Response models: /openapi.json describes every JSON body with them (tests/test_api_contract.py checks it)."""

from zhike.api.schemas.accounts import (
    KeyCreated,
    KeyList,
    KeyPublic,
    KeyRevoked,
    LoginResult,
    Me,
    MeResult,
    Ok,
    UserList,
    UserPublic,
)
from zhike.api.schemas.assets import AssetDetail, AssetPage, AssetParent, AssetPublic
from zhike.api.schemas.catalog import Health, ModelList, ModelPublic, ModelRemoved, PresetList, SizeList
from zhike.api.schemas.common import ERROR_RESPONSES, Deleted, ErrorBody, ErrorDetail
from zhike.api.schemas.jobs import JobList, JobPublic, JobState
from zhike.api.schemas.openai import ImagesResponse
from zhike.api.schemas.safety import AuditLog, SafetyStatus, Term, TermList, TermRemoved
from zhike.api.schemas.templates import DataFile, TemplateList, TemplatePublic
from zhike.api.schemas.verify import VerifyReport

__all__ = [
    "ERROR_RESPONSES",
    "AssetDetail",
    "AssetPage",
    "AssetParent",
    "AssetPublic",
    "AuditLog",
    "DataFile",
    "Deleted",
    "ErrorBody",
    "ErrorDetail",
    "Health",
    "ImagesResponse",
    "JobList",
    "JobPublic",
    "JobState",
    "KeyCreated",
    "KeyList",
    "KeyPublic",
    "KeyRevoked",
    "LoginResult",
    "Me",
    "MeResult",
    "ModelList",
    "ModelPublic",
    "ModelRemoved",
    "Ok",
    "PresetList",
    "SafetyStatus",
    "SizeList",
    "Term",
    "TermList",
    "TermRemoved",
    "TemplateList",
    "TemplatePublic",
    "UserList",
    "UserPublic",
    "VerifyReport",
]
