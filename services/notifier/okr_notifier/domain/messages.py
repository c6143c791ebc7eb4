"""Message keys of work notifications, rendered in Chinese or English.

A notification stores its message key and parameters, never a sentence, so a front end can
render it in the reader's language; the API also renders `text` from this catalogue
(Accept-Language: zh or en)."""

from __future__ import annotations

from typing import Any

LANGUAGES = ("en", "zh")

CATALOGUE: dict[str, dict[str, str]] = {
    "objective_changed.edited": {
        "en": "{actor_name} edited the objective “{objective_title}” ({fields}).",
        "zh": "{actor_name} 修改了目标「{objective_title}」（{fields}）。",
    },
    "objective_changed.kr_added": {
        "en": "{actor_name} added the key result “{kr_title}” to “{objective_title}”.",
        "zh": "{actor_name} 为目标「{objective_title}」添加了关键结果「{kr_title}」。",
    },
    "objective_changed.kr_edited": {
        "en": "{actor_name} edited the key result “{kr_title}” of “{objective_title}” ({fields}).",
        "zh": "{actor_name} 修改了目标「{objective_title}」的关键结果「{kr_title}」（{fields}）。",
    },
    "objective_changed.target_changed": {
        "en": "{actor_name} changed the target of “{kr_title}” from {old_target} to "
        "{new_target}: {reason}",
        "zh": "{actor_name} 将「{kr_title}」的目标值从 {old_target} 改为 {new_target}：{reason}",
    },
    "objective_changed.kr_removed": {
        "en": "{actor_name} removed the key result “{kr_title}” from “{objective_title}”.",
        "zh": "{actor_name} 从目标「{objective_title}」移除了关键结果「{kr_title}」。",
    },
    "objective_changed.aligned": {
        "en": "{actor_name} aligned “{objective_title}” to another objective.",
        "zh": "{actor_name} 将目标「{objective_title}」对齐到了另一个目标。",
    },
    "objective_changed.unaligned": {
        "en": "{actor_name} removed an alignment of “{objective_title}”.",
        "zh": "{actor_name} 取消了目标「{objective_title}」的一个对齐关系。",
    },
    "objective_changed.status": {
        "en": "“{objective_title}” is now {status}.",
        "zh": "目标「{objective_title}」的状态变为 {status}。",
    },
    "progress_updated": {
        "en": "{actor_name} updated “{kr_title}” of “{objective_title}”: progress "
        "{progress_before:.0%} → {progress_after:.0%}, confidence {confidence_after}★.",
        "zh": "{actor_name} 更新了「{objective_title}」的关键结果「{kr_title}」：进度 "
        "{progress_before:.0%} → {progress_after:.0%}，信心指数 {confidence_after}★。",
    },
    "progress_warning": {
        "en": "“{objective_title}” is behind pace: {progress:.0%} done, {expected:.0%} expected.",
        "zh": "目标「{objective_title}」进度落后：已完成 {progress:.0%}，应完成 {expected:.0%}。",
    },
    "confidence_warning": {
        "en": "Confidence in “{objective_title}” is {confidence}★, below {below}★.",
        "zh": "目标「{objective_title}」的信心指数为 {confidence}★，低于 {below}★。",
    },
    "key_task_created": {
        "en": "{actor_name} created the key task “{task_title}” under “{objective_title}”.",
        "zh": "{actor_name} 在目标「{objective_title}」下创建了关键任务「{task_title}」。",
    },
}


def language(accept_language: str | None) -> str:
    """The first of our languages the reader accepts (English when none is)."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        for lang in LANGUAGES:
            if tag == lang or tag.startswith(lang + "-"):
                return lang
    return "en"


class _Lenient(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def render(message_key: str, params: dict[str, Any], lang: str = "en") -> str:
    templates = CATALOGUE.get(message_key)
    if templates is None:
        return message_key
    try:
        return templates[lang].format_map(_Lenient(params))
    except (ValueError, TypeError):  # a parameter of an unexpected type: still say something
        return templates[lang]
