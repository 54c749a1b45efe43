"""The verification desk: batch verification under a policy (``batch``), the audit log (``audit``), HTML reports
(``report``) and the local web desk (``web``)."""
