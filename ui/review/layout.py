"""The Review screen's widgets and how they are laid out: filters, the table, the part's panel.

A mixin of :class:`ui.review.view.ReviewView`, kept apart because building the screen is long and
reads best on its own; every widget it makes is an attribute of the view, as before the split.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QDateTime, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QBoxLayout,
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMenu,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ui.review.constants import (
    CAPTURED,
    COLUMN_WIDTHS,
    DEFAULTS,
    MAX_CLASS_KEYS,
    REPORT_CHOICES,
    REVIEW_CHOICES,
    SHADOW_CHOICES,
    TIME_RANGES,
    VERDICT_CHOICES,
)
from ui.review.widgets import DetailPanel, ImageView, restyle
from ui.style import verdict_style


class ReviewLayout:
    """Builds the view's widgets (``_build``); the handlers they connect to live in the view and in
    :class:`ui.review.actions.ReviewActions`."""

    def _combo(self, choices: list[tuple[str, Any]], default: str | None = None) -> QComboBox:
        combo = QComboBox()
        for text, data in choices:
            combo.addItem(text, data)
        if default:
            combo.setCurrentText(default)
        combo.currentIndexChanged.connect(self._filters_changed)
        return combo

    def _build(self) -> None:
        self.time_range = self._combo(TIME_RANGES, DEFAULTS["time"])
        self.time_range.setToolTip("Capture time of the parts to show")
        now = QDateTime.currentDateTime()
        self.date_from = QDateTimeEdit(now.addDays(-1))
        self.date_to = QDateTimeEdit(now)
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd HH:mm")
            edit.dateTimeChanged.connect(self._typed)
            edit.setVisible(False)
        self.date_to_label = QLabel("to")
        self.date_to_label.setVisible(False)
        self.verdict = self._combo(VERDICT_CHOICES, DEFAULTS["verdict"])
        self.class_filter = self._combo([("All classes", None)])
        self.class_filter.setToolTip("The class the model predicted")
        self.class_filter.setMinimumContentsLength(10)
        self.review_state = self._combo(REVIEW_CHOICES, DEFAULTS["review"])
        self.lot = QComboBox()
        self.lot.setEditable(True)
        self.lot.addItem("All lots", None)
        self.lot.setMinimumContentsLength(10)
        self.lot.setToolTip("Type a lot or pick one of the recent runs' lots")
        self.lot.currentTextChanged.connect(self._typed)
        self.model_filter = self._combo([("All models", None)])
        self.model_filter.setMinimumContentsLength(12)
        self.shadow_filter = self._combo(SHADOW_CHOICES)
        self.shadow_filter.setToolTip(
            "Parts on which a shadow candidate disagreed with the deployed model (verdict or class); "
            "the part's panel shows both answers"
        )
        refresh = QPushButton("⟳ Refresh")
        refresh.setToolTip("Query again (F5): shows results written since")
        refresh.setShortcut("F5")
        refresh.clicked.connect(self.refresh)

        filters = QHBoxLayout()
        filters.setSpacing(6)
        for text, widget in (
            ("Time", self.time_range),
            (None, self.date_from),
            (self.date_to_label, self.date_to),
            ("Verdict", self.verdict),
            ("Class", self.class_filter),
            ("Review", self.review_state),
            ("Lot", self.lot),
            ("Model", self.model_filter),
        ):
            if isinstance(text, str):
                filters.addSpacing(6)
                filters.addWidget(QLabel(text))
            elif text is not None:
                filters.addWidget(text)
            filters.addWidget(widget)
        filters.addStretch(1)
        filters.addWidget(refresh)

        self.count_label = QLabel("–")
        self.count_label.setObjectName("resultCount")
        self.loaded_label = QLabel("")
        self.loaded_label.setObjectName("hint")
        self.order = self._combo([("Newest first", True), ("Oldest first", False)])
        self.order.setToolTip("Sort by capture time (the database sorts; click the Captured header too)")
        self.reviewer = QLineEdit(self.context.settings.operator)
        self.reviewer.setPlaceholderText("Your name")
        self.reviewer.setToolTip("Required: every review is signed with this name")
        self.reviewer.setMinimumWidth(150)
        self.reviewer.setMaximumWidth(220)
        self.reviewer.textChanged.connect(lambda _text: restyle(self.reviewer, ""))
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.setToolTip("Every result matching the filters, with class probabilities")
        self.csv_button.clicked.connect(lambda: self.export_csv())
        self.station_button = QPushButton("Export reviewed as dataset…")
        self.station_button.setToolTip(
            "The reviewed results matching the filters, with their archived images, as a station dataset "
            "(folder per class + manifest.csv) for the fine-tune wizard"
        )
        self.station_button.clicked.connect(lambda: self.export_station())
        self.report_button = QPushButton("Report…")
        self.report_button.setToolTip(
            "A PDF for the shift handover: yield trend, defect Pareto, UNSURE and override rates, drops, "
            "model versions, latency and cost per part against the unmerged twin"
        )
        report_menu = QMenu(self.report_button)
        for text, kind in REPORT_CHOICES:
            report_menu.addAction(text, lambda kind=kind: self.make_report(kind))
        self.report_button.setMenu(report_menu)
        second = QHBoxLayout()
        second.addWidget(self.count_label)
        second.addSpacing(10)
        second.addWidget(self.loaded_label)
        second.addStretch(1)
        second.addWidget(QLabel("Shadow"))
        second.addWidget(self.shadow_filter)  # in the first row it pushed the screen past 1366 px
        second.addSpacing(12)
        second.addWidget(self.order)
        second.addSpacing(12)
        second.addWidget(QLabel("Reviewer"))
        second.addWidget(self.reviewer)
        second.addSpacing(12)
        second.addWidget(self.csv_button)
        second.addWidget(self.station_button)
        second.addWidget(self.report_button)

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(28)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionsClickable(True)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(CAPTURED, Qt.SortOrder.DescendingOrder)
        header.sectionClicked.connect(self._header_clicked)
        for column, width in enumerate(COLUMN_WIDTHS):
            header.resizeSection(column, width)
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.installEventFilter(self)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.table)
        splitter.addWidget(self._build_detail())
        splitter.setStretchFactor(0, 11)
        splitter.setStretchFactor(1, 9)
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setObjectName("hint")

        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addLayout(second)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)

    def _build_detail(self) -> QWidget:
        panel = DetailPanel()
        panel.setMinimumWidth(430)
        self.detail_verdict = QLabel("–")
        self.detail_verdict.setObjectName("reviewVerdict")
        self.detail_verdict.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail_verdict.setStyleSheet(verdict_style(""))
        self.detail_verdict.setMinimumHeight(52)
        self.facts: dict[str, QLabel] = {}
        facts = QGridLayout()
        facts.setHorizontalSpacing(10)
        facts.setVerticalSpacing(2)
        names = ["Result", "Captured", "Class", "OOD score", "Truth", "Latency", "Lot", "QA"]
        for i, name in enumerate(names):
            caption = QLabel(name)
            caption.setObjectName("factName")
            value = QLabel("–")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            facts.addWidget(caption, i // 2, (i % 2) * 2)
            facts.addWidget(value, i // 2, (i % 2) * 2 + 1)
            self.facts[name] = value
        # Shadow mode: the candidate's answer beside the deployed one, on a row of its own.
        self.shadow_caption = QLabel("Shadow")
        self.shadow_caption.setObjectName("factName")
        self.shadow_answer = QLabel("")
        self.shadow_answer.setObjectName("shadowAnswer")
        self.shadow_answer.setWordWrap(True)
        self.shadow_answer.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = len(names) // 2
        facts.addWidget(self.shadow_caption, row, 0)
        facts.addWidget(self.shadow_answer, row, 1, 1, 3)
        self.shadow_caption.hide()
        self.shadow_answer.hide()
        facts.setColumnStretch(1, 1)
        facts.setColumnStretch(3, 1)

        self.image = ImageView()
        self.image.show_image(None, "Select a result")
        self.overlay = QCheckBox("Merge map")
        self.overlay.setToolTip(
            "Recompute the merge map with the deployed model and colour it over the image: "
            "warm where the model kept detail, cool where it merged tokens"
        )
        self.overlay.toggled.connect(self._overlay_toggled)
        self.image_note = QLabel("")
        self.image_note.setObjectName("hint")
        self.image_note.setWordWrap(True)
        under_image = QHBoxLayout()
        under_image.addWidget(self.overlay)
        under_image.addWidget(self.image_note, 1)
        picture = QVBoxLayout()
        picture.addWidget(self.image, 1)
        picture.addLayout(under_image)

        self.probabilities_title = probabilities_title = QLabel("Class probabilities")
        probabilities_title.setObjectName("sectionTitle")
        probabilities_title.setWordWrap(True)
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(3)
        grid.setColumnStretch(2, 1)
        self.class_rows: list[tuple[QPushButton, QLabel, QProgressBar]] = []
        for number in range(MAX_CLASS_KEYS):  # a fixed pool, shown as needed: no widget churn per row
            key = QPushButton(str(number + 1))
            key.setObjectName("classKey")
            key.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the table
            key.clicked.connect(self._class_key_clicked)
            caption = QLabel()
            bar = QProgressBar()
            bar.setRange(0, 1000)
            for column, widget in enumerate((key, caption, bar)):
                grid.addWidget(widget, number, column)
                widget.hide()
            self.class_rows.append((key, caption, bar))
        self.confirm_button = QPushButton("✓ Confirm class  (Enter)")
        self.confirm_button.setObjectName("primary")
        self.confirm_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.confirm_button.clicked.connect(self.confirm)
        keys = QLabel(
            "Enter / Space / C: confirm · number key: change class (asks why) · N / ↓ next · P / ↑ back"
        )
        keys.setObjectName("hint")
        keys.setWordWrap(True)
        history_title = QLabel("Review history")
        history_title.setObjectName("sectionTitle")
        self.history = QListWidget()
        self.history.setWordWrap(True)
        self.history.setMinimumHeight(60)
        self.history.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        deciding_widget = QWidget()
        deciding = QVBoxLayout(deciding_widget)
        deciding.setContentsMargins(0, 0, 0, 0)
        deciding.addWidget(self.detail_verdict)
        deciding.addWidget(probabilities_title)
        deciding.addLayout(grid)
        deciding.addWidget(self.confirm_button)
        deciding.addWidget(keys)
        deciding.addWidget(history_title)
        deciding.addWidget(self.history, 1)

        body = QBoxLayout(QBoxLayout.Direction.TopToBottom)
        body.addLayout(picture, 1)
        body.addWidget(deciding_widget, 0)
        panel.body, panel.deciding, panel.history = body, deciding_widget, self.history
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(8, 0, 0, 0)
        layout.addLayout(facts)
        layout.addLayout(body, 1)
        return panel
