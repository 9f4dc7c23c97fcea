"""Conversations: the durable transcript of every turn, from both the chain and live sessions."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep, SessionDep
from api.schemas import ConversationDocument
from pipelines.storage.turns import get_conversation

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])


@router.get("/{conversation_id}", response_model=ConversationDocument)
def read_conversation(
    conversation_id: str, session: SessionDep, principal: PrincipalDep
) -> ConversationDocument:
    """Every turn of the conversation in order, with the agent that holds it now."""
    return ConversationDocument.of(get_conversation(session, conversation_id, owner=principal.owner))
