import gc

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

# The cyclic garbage collector runs after this many container objects were allocated and not freed. CPython's 700
# suits small scripts; an exchange keeps a page or batch of records alive (thousands of dicts and tuples) while it
# makes the next, and at 700 the collector ran 2,150 times in a 100,000-counterparty OData pull: 2.9 s of 29 spent
# walking objects that were not garbage. At 10,000 it runs 30 times (0.2 s). Nearly everything Sdelka allocates is
# freed by reference counting anyway; what waits for the collector is a few thousand objects more at most.
GC_FIRST_GENERATION_THRESHOLD = 10_000


class CoreConfig(AppConfig):
    name = "sdelka.core"
    verbose_name = _("Reference data")

    def ready(self) -> None:
        _first, *older = gc.get_threshold()
        gc.set_threshold(GC_FIRST_GENERATION_THRESHOLD, *older)
