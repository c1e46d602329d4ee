"""Reference data every service shares: the five cities and the lead categories.

Codes are stable identifiers; names are Chinese first with English beside.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class City:
    code: str
    name_zh: str
    name_en: str
    province: str
    adcode: str
    abbrev: str  # used in readable numbers, e.g. TC-2026-000123


CITIES: dict[str, City] = {
    c.code: c
    for c in (
        City("taicang", "太仓市", "Taicang", "Jiangsu", "320585", "TC"),
        City("kunshan", "昆山市", "Kunshan", "Jiangsu", "320583", "KS"),
        City("changshu", "常熟市", "Changshu", "Jiangsu", "320581", "CS"),
        City("jiading", "嘉定区", "Jiading", "Shanghai", "310114", "JD"),
        City("baoshan", "宝山区", "Baoshan", "Shanghai", "310113", "BS"),
    )
}

CITY_CODES: tuple[str, ...] = tuple(CITIES)


@dataclass(frozen=True)
class Category:
    code: str
    name_zh: str
    name_en: str
    typical_sources: tuple[str, ...]


CATEGORIES: dict[str, Category] = {
    c.code: c
    for c in (
        Category("street_vending", "占道经营", "Street vending", ("camera", "squad")),
        Category("mobile_vendor", "流动摊点", "Mobile vendor", ("camera",)),
        Category("exposed_garbage", "暴露垃圾", "Exposed garbage", ("camera", "sanitation")),
        Category("illegal_parking", "车辆违停", "Illegal parking", ("camera",)),
        Category(
            "illegal_advertising", "违章广告", "Illegal advertising", ("camera", "property")
        ),
        Category(
            "littering_from_vehicle", "车窗抛物", "Littering from a vehicle", ("camera", "police")
        ),
        Category("garbage_sorting", "生活垃圾分类", "Household garbage sorting",
                 ("property", "sanitation")),
        Category("plaza_management", "开放式广场管理", "Open plaza management", ("property",)),
        Category(
            "construction_waste",
            "建筑垃圾(工程渣土)运输处置",
            "Construction waste transport and disposal",
            ("transport_alert", "squad"),
        ),
        Category(
            "illegal_dumping", "偷倒乱倒渣土", "Illegal dumping of muck",
            ("transport_alert", "citizen"),
        ),
    )
}

CATEGORY_CODES: tuple[str, ...] = tuple(CATEGORIES)

# Roles an organisation's API key can hold.
ROLES: tuple[str, ...] = ("source", "squad", "supervisor", "bureau", "coordinator", "admin")


@dataclass(frozen=True)
class OperationKind:
    code: str
    name_zh: str
    name_en: str


# Kinds of joint operation (联合整治); data, extended by adding a line.
OPERATION_KINDS: dict[str, OperationKind] = {
    k.code: k
    for k in (
        OperationKind("zero_hour", "零点行动", "Zero o'clock action (night crackdown)"),
        OperationKind("border_patrol", "边界联合巡查", "Joint border patrol"),
        OperationKind("special_rectification", "专项整治", "Special rectification campaign"),
        OperationKind("joint_inspection", "联合检查", "Joint inspection"),
    )
}

OPERATION_KIND_CODES: tuple[str, ...] = tuple(OPERATION_KINDS)
