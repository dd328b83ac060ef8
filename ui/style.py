"""Colours and type that read from two metres: one colour per verdict, used everywhere."""

from __future__ import annotations

VERDICT_COLORS = {
    "OK": "#1b873f",
    "NG": "#c62828",
    "UNSURE": "#e0a100",
    "ERROR": "#6a1b9a",
    "": "#5f6b7a",
}

APP_STYLE = """
QWidget { font-size: 14px; }
QTabBar::tab { padding: 8px 18px; font-size: 15px; }
QLabel#verdict { font-size: 72px; font-weight: 800; color: white; border-radius: 10px; padding: 8px; }
QLabel#banner { background: #c62828; color: white; font-size: 18px; font-weight: 700; padding: 8px; }
QLabel#counterValue { font-size: 30px; font-weight: 700; }
QLabel#counterName { color: #5f6b7a; font-size: 13px; }
QLabel#hint { color: #5f6b7a; }
QPushButton#primary { font-size: 16px; font-weight: 700; padding: 8px 22px; }
"""


def verdict_style(verdict: str) -> str:
    return f"background: {VERDICT_COLORS.get(verdict, VERDICT_COLORS[''])};"
