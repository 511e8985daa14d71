"""Pictures of labels: heat over the photo, boxes, the contact sheet."""
