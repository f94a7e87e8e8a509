"""External Identity Type migrations (docs/rules.md#migration): plans (:mod:`.plans`), the
SQL model (:mod:`.model`, step 1 in :mod:`.persons`), running and comparing plans (:mod:`.run`), where a switch date comes
from (:mod:`.switch`), validation against later exports (:mod:`.validate`) and the stored
result tables (:mod:`.store`)."""
