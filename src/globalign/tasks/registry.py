"""Task names users and configs refer to."""

from __future__ import annotations

from collections.abc import Callable

from globalign.errors import unknown_name
from globalign.tasks import belebele, global_opinions, md3, preference_probes, tydiqa
from globalign.tasks.base import Task, TaskSettings

TASKS: dict[str, Callable[[TaskSettings], Task]] = {
    global_opinions.NAME: global_opinions.GlobalOpinionsTask,
    md3.NAME: md3.Md3Task,
    tydiqa.NAME: tydiqa.TyDiQATask,
    belebele.NAME: belebele.BelebeleTask,
    preference_probes.WhereFromTask.name: preference_probes.WhereFromTask,
    preference_probes.AskRedditTask.name: preference_probes.AskRedditTask,
}

TASK_OPTIONS: dict[str, dict[str, str]] = {
    global_opinions.NAME: global_opinions.OPTIONS,
    md3.NAME: md3.OPTIONS,
    tydiqa.NAME: tydiqa.OPTIONS,
    belebele.NAME: belebele.OPTIONS,
    preference_probes.WhereFromTask.name: preference_probes.OPTIONS,
    preference_probes.AskRedditTask.name: preference_probes.OPTIONS,
}


def make_task(name: str, settings: TaskSettings) -> Task:
    if name not in TASKS:
        raise unknown_name("task", name, TASKS)
    return TASKS[name](settings)
