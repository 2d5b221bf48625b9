"""Court reports: one exhibit's report (a bundle) and a case report (a batch case directory), HTML and PDF.

    from evicap.report import ReportRequest, write_reports
    written = write_reports(ReportRequest(paths=[bundle], langs=("en",), ...))      # -> list[WrittenReport]
    written = await write_reports_async(request, browser)                          # on a running Browser

The documents are made by evicap.render (escaped, no script, strict CSP); each exhibit report is recorded in its
bundle's custody log (action ``reported``, ``details.files``), a case report in the case index's custody log.
"""

from evicap.report.writer import ReportRequest, WrittenReport, write_reports, write_reports_async

__all__ = ["ReportRequest", "WrittenReport", "write_reports", "write_reports_async"]
