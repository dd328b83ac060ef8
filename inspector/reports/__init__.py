"""Shift and lot reports: the ledger's numbers, cost per part and the LTM saving, as a PDF."""
