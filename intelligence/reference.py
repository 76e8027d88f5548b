"""Reference data shared by modules and the synthetic generators (one copy, here)."""

# Conversion of order currencies to USD. A constant table keeps month-by-month runs and backfills
# identical; a production deployment would load dated rates from its finance system instead.
FX_TO_USD: dict[str, float] = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27}
