from django.conf import settings
from django.db import models


class AuditAction(models.TextChoices):
    """Every kind of event the trail records. Other apps add their actions here."""

    LOGIN = "auth.login", "Logged in"
    LOGIN_FAILED = "auth.login_failed", "Login failed"
    LOGOUT = "auth.logout", "Logged out"
    SESSION_EXPIRED = "auth.session_expired", "Logged off after inactivity"
    API_TOKEN_ISSUED = "auth.api_token_issued", "API token issued"
    USER_CREATED = "user.created", "User created"
    USER_ROLE_CHANGED = "user.role_changed", "User role changed"
    USER_DEACTIVATED = "user.deactivated", "User deactivated"
    USER_REACTIVATED = "user.reactivated", "User reactivated"
    USER_PASSWORD_RESET = "user.password_reset", "User password reset"
    USER_UNLOCKED = "user.unlocked", "User's login lockout lifted"
    PATIENT_CREATED = "patient.created", "Patient created"
    PATIENT_UPDATED = "patient.updated", "Patient updated"
    PATIENT_CORRECTED = "patient.corrected", "Patient identity corrected (signed reports exist)"
    SLIDE_CREATED = "slide.created", "Slide created"
    SLIDE_UPDATED = "slide.updated", "Slide updated"
    SLIDE_STATUS_CHANGED = "slide.status_changed", "Slide status changed"
    CELL_IMAGE_UPLOADED = "cell_image.uploaded", "Cell image uploaded"
    CELL_IMAGE_DELETED = "cell_image.deleted", "Cell image deleted (before the slide was submitted)"
    AUDIT_EXPORTED = "audit.exported", "Audit trail exported"
    MODEL_VERSION_REGISTERED = "model_version.registered", "Model version registered"
    MODEL_VERSION_ACTIVATED = "model_version.activated", "Model version activated"
    INFERENCE_JOB_CREATED = "inference_job.created", "Inference job created"
    INFERENCE_JOB_STARTED = "inference_job.started", "Inference job started"
    INFERENCE_JOB_FINISHED = "inference_job.finished", "Inference job finished"
    SLIDE_DOMAIN_ASSESSED = "slide.domain_assessed", "Slide domain assessed"
    REVIEW_RECORDED = "review.recorded", "Cell review recorded"
    SLIDE_SIGNED = "slide.signed", "Slide signed"
    SLIDE_SIGN_REFUSED = "slide.sign_refused", "Slide sign-off refused (wrong password)"
    SLIDE_AMENDED = "slide.amended", "Slide amended (reopened)"
    SLIDE_AMEND_REFUSED = "slide.amend_refused", "Slide amendment refused (wrong password)"
    RESULTS_EXPORTED = "results.exported", "Results exported"
    CELL_EXCLUDED = "cell_image.excluded", "Cell excluded from the differential"
    CELL_INCLUDED = "cell_image.included", "Cell exclusion withdrawn"
    DIFFERENTIAL_CLASS_CREATED = "differential_class.created", "Differential class added"
    DIFFERENTIAL_CLASS_CHANGED = "differential_class.changed", "Differential class changed"
    DIFFERENTIAL_CLASSES_REORDERED = "differential_class.reordered", "Differential classes reordered"
    COUNTING_DEFAULT_TARGET_CHANGED = "counting.default_target_changed", "Lab's target WBC count changed"
    SLIDE_TARGET_COUNT_SET = "slide.target_count_set", "Slide's target WBC count set"
    SLIDE_WBC_COUNT_ENTERED = "slide.wbc_count_entered", "Slide's WBC count entered"
    PROFICIENCY_SET_CREATED = "proficiency_set.created", "Proficiency set created"
    PROFICIENCY_SET_ASSIGNED = "proficiency_set.assigned", "Proficiency set assigned"
    PROFICIENCY_ATTEMPT_STARTED = "proficiency_attempt.started", "Proficiency attempt started"
    PROFICIENCY_ATTEMPT_FINISHED = "proficiency_attempt.finished", "Proficiency attempt finished"
    PROFICIENCY_RESULTS_EXPORTED = "proficiency_results.exported", "Proficiency results exported"
    CONSULT_REQUESTED = "consult.requested", "Consult requested"
    CONSULT_LABEL_RECORDED = "consult.label_recorded", "Consultant's cell label recorded"
    CONSULT_ANSWERED = "consult.answered", "Consult answered (opinion given)"
    CONSULT_CLOSED = "consult.closed", "Consult closed"
    FIELD_IMAGE_UPLOADED = "field_image.uploaded", "Field image uploaded"
    FIELD_IMAGE_LOCATED = "field_image.located", "White cells located on a field"
    FIELD_CELL_ADDED = "field_image.cell_added", "Cell added on a field by a pathologist"
    MODEL_VERSION_ROLLED_BACK = (
        "model_version.rolled_back",
        "Model version rolled back (earlier one activated)",
    )
    MODEL_VERSION_ACTIVATE_REFUSED = (
        "model_version.activate_refused",
        "Model version activation refused (wrong password)",
    )
    ADAPTATION_RUN_STARTED = "adaptation_run.started", "Adaptation to the lab started"
    ADAPTATION_RUN_CANCEL_REQUESTED = "adaptation_run.cancel_requested", "Adaptation cancellation requested"
    ADAPTATION_RUN_FINISHED = "adaptation_run.finished", "Adaptation to the lab finished"


class AuditEvent(models.Model):
    """One immutable entry of the audit trail.

    ``hash`` covers every field below plus ``previous_hash``, so editing or deleting any row
    breaks the chain (see ``audit.selectors.audit_chain_verify``). The table also refuses UPDATE
    and DELETE through database triggers (migration 0002).
    """

    created_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Kept separately: failed logins have no user, and names survive renames.
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, choices=AuditAction.choices, db_index=True)
    object_type = models.CharField(max_length=64, blank=True, db_index=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    # Text, not inet: the hash must see exactly the characters it was computed over.
    client_address = models.CharField(max_length=45, blank=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.object_type}:{self.object_id} by {self.actor_username or '-'}"


class AuditCheckpointMode(models.TextChoices):
    FULL = "full", "Full (from the first event)"
    INCREMENTAL = "incremental", "Incremental (from the previous checkpoint)"


class AuditCheckpoint(models.Model):
    """One successful run of ``verify_audit``: the chain was intact up to ``last_event_id``.

    The next run verifies only the events after it, once it has checked that this event still
    carries ``last_event_hash`` and that ``event_count`` events still lead up to it. Append-only
    like the trail (migration 0016). ``last_event_id`` is no foreign key on purpose: a checkpoint
    must outlive the removal of its event, to reveal it.
    """

    last_event_id = models.BigIntegerField(db_index=True)
    last_event_hash = models.CharField(max_length=64)
    # Events from the first one up to and including the last one: the chain's length then.
    event_count = models.BigIntegerField()
    events_verified = models.BigIntegerField(help_text="events whose hashes this run recomputed")
    mode = models.CharField(max_length=16, choices=AuditCheckpointMode.choices)
    # Who or what ran it: the operating-system user, the host and the command.
    run_by = models.CharField(max_length=200)
    created_at = models.DateTimeField()
    duration = models.DurationField()

    class Meta:
        ordering = ["-id"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return (
            f"checkpoint #{self.pk} at event #{self.last_event_id} ({self.mode}, {self.event_count} events)"
        )
