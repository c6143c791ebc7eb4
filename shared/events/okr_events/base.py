"""The base every published event contract derives from."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import to_jsonable_python

#: Prefix of the JSON Schema ``$id`` (and CloudEvents ``dataschema``) of every contract.
SCHEMA_URI_PREFIX = "urn:okr:events:schema:"

#: A free-form JSON object. Values are normalised to their JSON form on the way in (a date
#: becomes "2025-06-30") so a contract equals itself after a JSON round trip.
JsonObject = Annotated[dict[str, Any], BeforeValidator(to_jsonable_python)]


class EventContract(BaseModel):
    """What another service may rely on about one event: frozen, closed, versioned.

    Contracts are separate from the domain events so the domain can be refactored without
    silently changing what goes on the wire; a breaking change needs a new ``version``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    event_type: ClassVar[str]
    version: ClassVar[int] = 1

    aggregate_id: UUID = Field(description="Id of the aggregate (event stream) that changed.")
    aggregate_version: int = Field(
        ge=1, description="Position of the event in its stream; orders one aggregate's events."
    )
    occurred_at: AwareDatetime = Field(description="When the event was recorded.")
    actor: str = Field(description="Member id (or system principal) who caused the event.")

    @classmethod
    def cloudevents_type(cls) -> str:
        """The CloudEvents ``type``: the version is part of it so consumers can route on it."""
        return f"{cls.event_type}.v{cls.version}"

    @classmethod
    def schema_uri(cls) -> str:
        """``$id`` of the contract's JSON Schema, also sent as the envelope's ``dataschema``."""
        return f"{SCHEMA_URI_PREFIX}{cls.cloudevents_type()}"
