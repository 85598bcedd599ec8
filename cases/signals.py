"""What this app announces to the apps built on it, which listen without ``cases`` knowing them."""

from django.dispatch import Signal

# Sent with ``actor`` (the uploading user) and ``slide`` once a slide has accepted new cell images,
# inside the upload's transaction. The classifier listens and queues them for classification.
cell_images_added = Signal()
