"""Layer and tensor names made unique while a graph is read or written (importers and exporters)."""


class UniqueNames(set):
    """The names taken so far; `unique(name)` takes `name`, or the first free `name_1`, `name_2`, ..."""

    def unique(self, name: str) -> str:
        base, k = name, 1
        while name in self:
            name, k = f"{base}_{k}", k + 1
        self.add(name)
        return name
