"""A layout that places widgets in rows and wraps to the next row when one is full, so a
row of file chips never makes the chat wider than its column. After Qt's own Flow Layout
example (Qt has none built in)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem


class FlowLayout(QLayout):
    """Lays its items out left to right (or right-aligned), wrapping to a new row when one is full."""

    def __init__(self, parent=None, spacing: int = 6, align_right: bool = False):
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        self._align_right = align_right
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientations:  # noqa: N802
        return Qt.Orientations(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._arrange(QRect(0, 0, width, 0), place=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._arrange(rect, place=True)

    def sizeHint(self) -> QSize:  # noqa: N802
        return self.minimumSize()

    def minimumSize(self) -> QSize:  # noqa: N802
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        margins = self.contentsMargins()
        return size + QSize(margins.left() + margins.right(), margins.top() + margins.bottom())

    def _arrange(self, rect: QRect, place: bool) -> int:
        """Lays the items out in rows within ``rect``; returns the height they take."""
        margins = self.contentsMargins()
        area = rect.adjusted(margins.left(), margins.top(), -margins.right(), -margins.bottom())
        rows: list[list[tuple[QLayoutItem, QSize]]] = [[]]
        line_width = 0
        for item in self._items:
            hint = item.sizeHint().boundedTo(QSize(area.width(), 10_000))
            needed = hint.width() + (self._spacing if rows[-1] else 0)
            if rows[-1] and line_width + needed > area.width():
                rows.append([])
                line_width, needed = 0, hint.width()
            rows[-1].append((item, hint))
            line_width += needed
        y = area.y()
        for row in rows:
            if not row:
                continue
            width = sum(h.width() for _, h in row) + self._spacing * (len(row) - 1)
            x = area.x() + (area.width() - width if self._align_right else 0)
            height = max(h.height() for _, h in row)
            for item, hint in row:
                if place:
                    item.setGeometry(QRect(QPoint(x, y), hint))
                x += hint.width() + self._spacing
            y += height + self._spacing
        return y - self._spacing - rect.y() + margins.bottom() if self._items else 0
