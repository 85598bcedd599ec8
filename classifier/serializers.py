from django.urls import reverse
from rest_framework import serializers

from cases.models import Slide
from cases.selectors import slide_visible_queryset
from classifier.models import (
    AdaptationRun,
    CellClass,
    InferenceJob,
    ModelVersion,
    Prediction,
    QuickClassification,
    SlideDomainAssessment,
)


class ModelVersionSerializer(serializers.ModelSerializer):
    parent = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "name",
            "is_active",
            "is_candidate",
            "parent",
            "review_threshold",
            "domain_cell_threshold",
            "domain_slide_threshold",
            "validated_domains",
            "metrics",
            "sha256",
            "registered_at",
        ]
        read_only_fields = fields


class ModelActivationSerializer(serializers.Serializer):
    password = serializers.CharField(write_only=True, style={"input_type": "password"}, trim_whitespace=False)


class AdaptationRunSerializer(serializers.ModelSerializer):
    base_model_version = serializers.SlugRelatedField(slug_field="name", read_only=True)
    result_model_version = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    started_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    class_counts = serializers.DictField(child=serializers.IntegerField(), read_only=True)

    class Meta:
        model = AdaptationRun
        fields = [
            "id",
            "status",
            "stage",
            "message",
            "percent",
            "cancel_requested",
            "class_counts",
            "signed_only",
            "date_from",
            "date_to",
            "base_model_version",
            "result_model_version",
            "started_by",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class InferenceJobSerializer(serializers.ModelSerializer):
    model_version = serializers.SlugRelatedField(slug_field="name", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = InferenceJob
        fields = [
            "id",
            "slide",
            "model_version",
            "status",
            "total",
            "done",
            "failed",
            "attempts",
            "error",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class InferenceJobCreateSerializer(serializers.Serializer):
    """Classify a submitted slide's images that the given model version has not classified yet."""

    slide = serializers.PrimaryKeyRelatedField(queryset=Slide.objects.none())
    model_version = serializers.SlugRelatedField(
        slug_field="name",
        queryset=ModelVersion.objects.all(),
        required=False,
        help_text="Default: the active one",
    )

    def get_fields(self) -> dict:
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:
            fields["slide"].queryset = slide_visible_queryset(request.user)
        return fields


class ProbabilitiesSerializer(serializers.Serializer):
    EOSINOPHIL = serializers.FloatField()
    LYMPHOCYTE = serializers.FloatField()
    MONOCYTE = serializers.FloatField()
    NEUTROPHIL = serializers.FloatField()


class PredictionSerializer(serializers.ModelSerializer):
    model_version = serializers.SlugRelatedField(slug_field="name", read_only=True)
    probabilities = ProbabilitiesSerializer(read_only=True)
    review_threshold = serializers.FloatField(
        source="cell_review_threshold",
        read_only=True,
        help_text="The review threshold this cell is held to: its nearest training source's, else the "
        "model card's; 1.0 means no confidence is validated for cells like it (always reviewed)",
    )
    needs_review = serializers.SerializerMethodField(
        help_text="Not auto-acceptable: confidence below the cell's review threshold, or the cell "
        "or its slide outside the model's validated domain (or of unknown domain)"
    )

    class Meta:
        model = Prediction
        fields = [
            "id",
            "cell_image",
            "model_version",
            "job",
            "label",
            "probabilities",
            "confidence",
            "domain_score",
            "in_domain",
            "review_threshold",
            "needs_review",
            "inference_ms",
            "created_at",
        ]
        read_only_fields = fields

    def get_needs_review(self, prediction: Prediction) -> bool:
        return not prediction.auto_acceptable


class QuickClassificationSerializer(serializers.ModelSerializer):
    model_version = serializers.SlugRelatedField(slug_field="name", read_only=True)
    label = serializers.ChoiceField(choices=CellClass.choices, allow_blank=True, read_only=True)
    probabilities = ProbabilitiesSerializer(read_only=True, allow_null=True)
    status_url = serializers.SerializerMethodField(help_text="Poll this until status is succeeded or failed")

    class Meta:
        model = QuickClassification
        fields = [
            "id",
            "status",
            "original_filename",
            "model_version",
            "label",
            "probabilities",
            "confidence",
            "domain_score",
            "in_domain",
            "error",
            "status_url",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_status_url(self, quick: QuickClassification) -> str:
        path = reverse("api:quick-classification-detail", args=[quick.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class QuickClassificationCreateSerializer(serializers.Serializer):
    image = serializers.FileField(help_text="One cell image: PNG, JPEG, TIFF or BMP")


class SlideDomainAssessmentSerializer(serializers.ModelSerializer):
    model_version = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = SlideDomainAssessment
        fields = [
            "verdict",
            "statistic",
            "threshold",
            "cell_count",
            "few_cells",
            "model_version",
            "job",
            "created_at",
        ]
        read_only_fields = fields
