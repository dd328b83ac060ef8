"""The fine-tune wizard: adapt the deployed model to a new station's lighting and camera angle.

Rooms: ``wizard`` (the shell: flow, workers, staging folder, save/cancel), one module per page
(``station``, ``augment``, ``recipe``, ``train``, ``compare``, ``save``) and ``common`` (what the
pages share). The Qt-free work (station checks, training, speed, saving) is
``inspector.training.adaptation``, which the CLI calls too.
"""

from ui.finetune.recipe import RecipePage
from ui.finetune.train import yield_text
from ui.finetune.wizard import FinetuneWizard

__all__ = ["FinetuneWizard", "RecipePage", "yield_text"]
