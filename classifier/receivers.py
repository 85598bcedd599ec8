"""What the classifier does when the apps below it announce something (connected in ``apps.py``)."""

from accounts.models import User
from cases.models import Slide
from classifier.services import slide_new_images_classify


def cell_images_classify(sender: type, *, actor: User, slide: Slide, **kwargs: object) -> None:
    """New images of a slide that is already being classified get a job of their own."""
    slide_new_images_classify(actor=actor, slide=slide)
