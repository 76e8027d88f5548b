"""Identity resolution: people across the five sources, as connected components of the identity graph.

Nodes are identifiers (`customer:C1`, `email:<sha256>`, `handle:jane`, `cookie:ck_1`); edges are the
links the data itself shows: a logged-in web session links a cookie to a customer, a CRM customer
record links a customer to an e-mail hash, a social event with both links a cookie to a handle.
Every connected component is one person, named after its most stable member (a customer id if it
has one, else an e-mail hash, a handle, a cookie), so a person keeps the same id as long as that
member stays in the component.

Guard against over-merging: a cookie linked to more than `MAX_CUSTOMERS_PER_COOKIE` customers in the
window is a shared device (a family laptop, a shop terminal); its customer links are not used.

Monthly partitions: the month and the `HISTORY_MONTHS` before it (the journeys' lookback), plus every
CRM customer record up to the month's end (customers sign up once and are never exported again).
"""

import datetime as dt

import dagster as dg
import dataframely as dy
import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from intelligence.contracts import Contract
from intelligence.modules import module
from intelligence.partitions import MONTHLY, lookback, months_before, next_month, partition_months

MAX_CUSTOMERS_PER_COOKIE = 1
# Months before the partition's month that the identity (and the journeys) look at.
HISTORY_MONTHS = 2
TYPE_RANK = {"customer": 0, "email": 1, "handle": 2, "cookie": 3}
MONTH = "month"
# All CRM history up to the month's end: 100 years back, clipped to the first partition.
ALL_HISTORY_MONTHS = 1200


class Identity(dy.Schema):
    identifier = dy.String(primary_key=True, description="Typed identifier, e.g. cookie:ck_1 or customer:C1.")
    month = dy.Date(primary_key=True, description="First day of the month this resolution is for.")
    identifier_type = dy.Enum(list(TYPE_RANK), nullable=False)
    person_id = dy.String(nullable=False, description="The component's most stable identifier.")
    component_size = dy.UInt32(nullable=False, min=1)


CONTRACT = Contract(
    schema=Identity,
    version="1.0.0",
    owner="team:analytics",
    description="Identifier → person for a month, from connected components of the identity graph.",
)


def _key(kind: str, column: str) -> pl.Expr:
    return pl.when(pl.col(column).is_not_null()).then(pl.lit(kind + ":") + pl.col(column))


def identity_links(
    web: pl.LazyFrame, crm_customers: pl.LazyFrame, social: pl.LazyFrame, max_customers_per_cookie: int
) -> pl.LazyFrame:
    """Edges (a, b) between typed identifiers that the data shows belong to one person."""
    cookie_customer = web.select(a=_key("cookie", "cookie_id"), b=_key("customer", "customer_id")).drop_nulls()
    shared = (
        cookie_customer.unique()
        .group_by("a")
        .agg(pl.len().alias("customers"))
        .filter(pl.col("customers") > max_customers_per_cookie)
        .select("a")
    )
    cookie_customer = cookie_customer.join(shared, on="a", how="anti")
    customer_email = crm_customers.select(a=_key("customer", "customer_id"), b=_key("email", "email_hash")).drop_nulls()
    cookie_handle = social.select(a=_key("cookie", "cookie_id"), b=_key("handle", "social_handle")).drop_nulls()
    return pl.concat([cookie_customer, customer_email, cookie_handle]).unique()


def resolve_people(nodes: pl.Series, links: pl.DataFrame) -> pl.DataFrame:
    """Connected components over `links`; every node in `nodes` or `links` gets a person id."""
    all_nodes = pl.concat(
        [nodes.rename("identifier"), links["a"].rename("identifier"), links["b"].rename("identifier")]
    )
    table = (
        pl.DataFrame({"identifier": all_nodes})
        .drop_nulls()
        .unique()
        .with_columns(pl.col("identifier").str.split_exact(":", 1).struct.field("field_0").alias("identifier_type"))
        .with_columns(pl.col("identifier_type").replace_strict(TYPE_RANK, return_dtype=pl.UInt8).alias("_rank"))
        .sort("_rank", "identifier")  # index order = stability order: the min index names the person
        .with_row_index("_idx")
    )
    n = table.height
    if n == 0:
        return pl.DataFrame(
            schema={
                "identifier": pl.String,
                "identifier_type": pl.String,
                "person_id": pl.String,
                "component_size": pl.UInt32,
            }
        )
    index = table.select("identifier", "_idx")
    edges = (
        links.join(index.rename({"identifier": "a", "_idx": "u"}), on="a")
        .join(index.rename({"identifier": "b", "_idx": "v"}), on="b")
        .select("u", "v")
    )
    u = edges["u"].to_numpy().astype(np.int64)
    v = edges["v"].to_numpy().astype(np.int64)
    graph = coo_matrix((np.ones(len(u), dtype=np.int8), (u, v)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    # The first (most stable) node of each component names it.
    first = np.full(labels.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n))
    names = table["identifier"].gather(first[labels])
    sizes = np.bincount(labels)[labels]
    return table.select(
        "identifier",
        "identifier_type",
        names.alias("person_id"),
        pl.Series("component_size", sizes, dtype=pl.UInt32),
    )


def identifier_nodes(
    ads: pl.LazyFrame, social: pl.LazyFrame, web: pl.LazyFrame, email: pl.LazyFrame, crm: pl.LazyFrame
) -> pl.Series:
    """Every identifier seen by any source in the window."""
    parts = [
        ads.select(i=_key("cookie", "cookie_id")),
        social.select(i=_key("cookie", "cookie_id")),
        social.select(i=_key("handle", "social_handle")),
        web.select(i=_key("cookie", "cookie_id")),
        web.select(i=_key("customer", "customer_id")),
        email.select(i=_key("email", "email_hash")),
        crm.select(i=_key("customer", "customer_id")),
    ]
    return pl.concat(parts).drop_nulls().unique().collect().to_series()


def _window(frame: pl.LazyFrame, start: dt.date, end: dt.date) -> pl.LazyFrame:
    return frame.filter((pl.col("landing_date") >= start) & (pl.col("landing_date") < end))


def _daily(source: str, months: int) -> dg.AssetIn:
    return dg.AssetIn(
        ["marketing", f"cleansed_{source}"],
        partition_mapping=lookback(-months),
        metadata={"allow_missing_partitions": True},
    )


@module(
    key=["marketing", "identity"],
    contract=CONTRACT,
    partitions_def=MONTHLY,
    partition_column=MONTH,
    ins={
        "ads": _daily("ads", HISTORY_MONTHS),
        "social": _daily("social", HISTORY_MONTHS),
        "web": _daily("web", HISTORY_MONTHS),
        "email": _daily("email", HISTORY_MONTHS),
        "crm": _daily("crm", ALL_HISTORY_MONTHS),
    },
)
def identity(
    context: dg.AssetExecutionContext,
    ads: pl.LazyFrame,
    social: pl.LazyFrame,
    web: pl.LazyFrame,
    email: pl.LazyFrame,
    crm: pl.LazyFrame,
) -> pl.DataFrame:
    """Resolves people across the five sources: identifier → person, per month."""
    frames = []
    for month in partition_months(context):
        start, end = months_before(month, HISTORY_MONTHS), next_month(month)
        web_m, social_m = _window(web, start, end), _window(social, start, end)
        customers = crm.filter((pl.col("landing_date") < end) & (pl.col("record_type") == "customer"))
        links = identity_links(web_m, customers, social_m, MAX_CUSTOMERS_PER_COOKIE).collect()
        nodes = identifier_nodes(
            _window(ads, start, end), social_m, web_m, _window(email, start, end), _window(crm, start, end)
        )
        frames.append(resolve_people(nodes, links).with_columns(pl.lit(month).alias(MONTH)))
    return pl.concat(frames)
