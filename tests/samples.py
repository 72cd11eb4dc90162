"""Sample licences for tests: realistic, valid, and distinct per index."""

from __future__ import annotations

import json
from typing import Any

from licence.catalogue import catalogue
from licence.credit_code import check_character

# Published unified social credit codes, used to test the check character.
REAL_CREDIT_CODES = (
    "91110108551385082Q",  # 北京小米科技有限责任公司
    "914403001922038216",  # 华为技术有限公司
    "91440300708461136T",  # 深圳市腾讯计算机系统有限公司
    "9144030071526726XG",  # 腾讯科技（深圳）有限公司
    "91330100799655058B",  # 阿里巴巴（中国）网络技术有限公司
)

# The issuing authority of the samples is agency 1 of tests/conftest.py's registry.
AUTHORITY = "深圳市福田区市场监督管理局"


def credit_code(index: int) -> str:
    """A well-formed code (valid check character) for a made-up enterprise of Shenzhen's
    Futian district (440304)."""
    first17 = f"914403047{index:08d}"
    return first17 + check_character(first17)


def business_licence(index: int = 0, **overrides: str) -> dict[str, str]:
    """A valid 营业执照 whose fields depend on `index`."""
    fields = {
        "licenceNumber": f"110108{index:012d}",  # file names in tests rely on it
        "holderName": f"深圳福田第{index}号科技有限公司",
        "unifiedSocialCreditCode": credit_code(index),
        "legalRepresentative": "张三",
        "registeredAddress": f"广东省深圳市福田区深南大道{index % 900 + 1}号",
        "businessScope": "一般项目：技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广；"
        "软件开发；信息系统集成服务（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）。",
        "registeredCapital": "100万元人民币",
        "dateOfEstablishment": "2020-05-18",
        "validFrom": "2020-05-18",
        "validUntil": "2040-05-17",
        "issuingAuthority": AUTHORITY,
    }
    fields.update(overrides)
    return fields


def food_business_licence(index: int = 0, **overrides: str) -> dict[str, str]:
    """A valid 食品经营许可证 whose fields depend on `index`."""
    fields = {
        "licenceNumber": f"JY14403040{index:06d}",
        "holderName": f"深圳福田第{index}号餐饮店",
        "unifiedSocialCreditCode": credit_code(index),
        "legalRepresentative": "李四",
        "residence": "广东省深圳市福田区福华路1号",
        "businessPremises": "广东省深圳市福田区福华路1号一层",
        "mainBusinessFormat": "餐饮服务经营者（小型餐馆）",
        "businessItems": "热食类食品制售",
        "validFrom": "2024-01-01",
        "validUntil": "2029-12-31",
        "issuingAuthority": AUTHORITY,
    }
    fields.update(overrides)
    return fields


# An optional field a type's second version adds at its end (allowed by check_successor).
REMARKS_FIELD: dict[str, Any] = {
    "name": "remarks",
    "label": {"zh": "备注", "en": "Remarks"},
    "kind": "text",
    "required": False,
    "personal": False,
    "maxLength": 200,
}


def with_remarks(type_id: str) -> dict[str, Any]:
    """The definition of `type_id`'s version 2: its shipped version 1 with REMARKS_FIELD
    added at the end."""
    raw = json.loads(catalogue().get(type_id, 1).definition)
    return {**raw, "version": 2, "fields": [*raw["fields"], REMARKS_FIELD]}
