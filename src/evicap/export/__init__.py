"""Exports of bundles into formats other tools read. ``export_wacz`` writes a WACZ 1.1.1 package."""

from evicap.export.wacz import ExportedBundle, WaczResult, export_wacz

__all__ = ["ExportedBundle", "WaczResult", "export_wacz"]
