"""Plain-text helpers shared by the chat and speech stages (no model dependencies)."""

from pipelines.text.sentences import SentenceSplitter, split_sentences, trim_to_last_sentence

__all__ = ["SentenceSplitter", "split_sentences", "trim_to_last_sentence"]
