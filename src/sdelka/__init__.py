"""Sdelka: an open-source CRM that exchanges data with 1C:Enterprise."""
