from rest_framework import serializers

from cases.models import CellImage, FieldImage, ImageKind, Patient, Slide
from cases.selectors import patient_visible_queryset


class PatientSerializer(serializers.ModelSerializer):
    correction_reason = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=500,
        help_text="Required to change a patient who has signed reports (a recorded correction).",
    )

    class Meta:
        model = Patient
        fields = [
            "id",
            "mrn",
            "family_name",
            "given_name",
            "date_of_birth",
            "sex",
            "correction_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class SlideSerializer(serializers.ModelSerializer):
    patient = serializers.PrimaryKeyRelatedField(queryset=Patient.objects.none())
    cell_image_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Slide
        fields = [
            "id",
            "accession_number",
            "patient",
            "collected_at",
            "received_at",
            "priority",
            "stain",
            "notes",
            "status",
            "cell_image_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "status", "created_at", "updated_at"]

    def get_fields(self) -> dict:
        fields = super().get_fields()
        request = self.context.get("request")
        # Only patients the caller may see can be referenced; others read as "does not exist".
        if request is not None:
            fields["patient"].queryset = patient_visible_queryset(request.user)
        return fields


class SlideUpdateSerializer(SlideSerializer):
    """A slide stays with its patient: ``patient`` is read-only here (a declared field ignores
    ``Meta.read_only_fields``, so it is declared again), and a request that tries to change it is
    refused instead of being silently ignored."""

    patient = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta(SlideSerializer.Meta):
        read_only_fields = [*SlideSerializer.Meta.read_only_fields, "patient"]

    def validate(self, data: dict) -> dict:
        requested = self.initial_data.get("patient") if hasattr(self.initial_data, "get") else None
        if requested is not None and str(requested) != str(self.instance.patient_id):
            raise serializers.ValidationError(
                {
                    "patient": [
                        "A slide's patient cannot be changed; create the slide again for the right patient."
                    ]
                }
            )
        return data


class CellImageSerializer(serializers.ModelSerializer):
    class Meta:
        model = CellImage
        fields = [
            "id",
            "slide",
            "sha256",
            "image_format",
            "width",
            "height",
            "size_bytes",
            "original_filename",
            "uploaded_at",
            "source",
            "field_image",
            "box_x",
            "box_y",
            "box_w",
            "box_h",
            "locator_score",
        ]
        read_only_fields = fields


class FieldImageSerializer(serializers.ModelSerializer):
    """A whole microscope field; ``located_count`` is null until the worker has located its cells
    (0: no white cell found). Its cells are the cell images whose ``field_image`` is this id."""

    class Meta:
        model = FieldImage
        fields = [
            "id",
            "slide",
            "sha256",
            "image_format",
            "width",
            "height",
            "size_bytes",
            "original_filename",
            "uploaded_at",
            "located_at",
            "located_count",
            "location_error",
        ]
        read_only_fields = fields


class CellImageUploadSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(allow_empty_file=True), allow_empty=False)
    kind = serializers.ChoiceField(
        choices=ImageKind.choices,
        default=ImageKind.AUTO,
        help_text="cell, field (a whole microscope field: the worker locates its white cells), or auto "
        "(default: a field when the image's short side is at least 480 px).",
    )


class UploadOutcomeSerializer(serializers.Serializer):
    filename = serializers.CharField()
    accepted = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True)
    kind = serializers.CharField(allow_blank=True, help_text="cell or field; empty when rejected")
    cell_image = CellImageSerializer(allow_null=True)
    field_image = FieldImageSerializer(allow_null=True)


class UploadResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = UploadOutcomeSerializer(many=True)
