"""Identity resolution: connected components with known answers, and the shared-device guard."""

from __future__ import annotations

import polars as pl

from assets.marketing.identity import identity_links, resolve_people


def _links(pairs: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"a": [a for a, _ in pairs], "b": [b for _, b in pairs]}, schema={"a": pl.String, "b": pl.String}
    )


def test_components_follow_links_transitively_and_name_people_by_the_most_stable_member() -> None:
    # cookie:1 — customer:A — email:x — (nothing); cookie:2 — handle:h ; cookie:3 alone
    links = _links([("cookie:1", "customer:A"), ("customer:A", "email:x"), ("cookie:2", "handle:h")])
    people = resolve_people(pl.Series(["cookie:3", "cookie:1"]), links)
    by_id = dict(zip(people["identifier"], people["person_id"], strict=True))
    assert by_id == {
        "cookie:1": "customer:A",
        "customer:A": "customer:A",
        "email:x": "customer:A",
        "cookie:2": "handle:h",  # a handle is more stable than a cookie
        "handle:h": "handle:h",
        "cookie:3": "cookie:3",
    }
    sizes = dict(zip(people["identifier"], people["component_size"], strict=True))
    assert sizes["email:x"] == 3 and sizes["cookie:3"] == 1


def test_long_chains_collapse_into_one_person() -> None:
    chain = [(f"cookie:{i}", f"cookie:{i + 1}") for i in range(50)] + [("cookie:50", "customer:Z")]
    people = resolve_people(pl.Series([], dtype=pl.String), _links(chain))
    assert people["person_id"].unique().to_list() == ["customer:Z"]
    assert people.height == 52


def test_two_customers_on_one_cookie_are_a_shared_device_not_one_person() -> None:
    web = pl.LazyFrame(
        {
            "cookie_id": ["shared", "shared", "own"],
            "customer_id": ["A", "B", "A"],
        }
    )
    crm = pl.LazyFrame({"customer_id": ["A", "B"], "email_hash": ["ea", "eb"]})
    social = pl.LazyFrame(
        {"cookie_id": [None], "social_handle": [None]}, schema={"cookie_id": pl.String, "social_handle": pl.String}
    )
    links = identity_links(web, crm, social, max_customers_per_cookie=1).collect()
    people = resolve_people(pl.Series(["cookie:shared"]), links)
    by_id = dict(zip(people["identifier"], people["person_id"], strict=True))
    assert by_id["cookie:own"] == "customer:A"
    assert by_id["cookie:shared"] == "cookie:shared"  # not glued to either customer
    assert by_id["customer:B"] == "customer:B" != by_id["customer:A"]


def test_empty_graph() -> None:
    people = resolve_people(pl.Series([], dtype=pl.String), _links([]))
    assert people.height == 0
    assert set(people.columns) == {"identifier", "identifier_type", "person_id", "component_size"}
