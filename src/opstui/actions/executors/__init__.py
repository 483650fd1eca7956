"""Executors by step kind, as "module:Class", imported lazily and only by the Runner."""

from __future__ import annotations

EXECUTORS: dict[str, str] = {
    "http": "opstui.actions.executors.http:HttpExecutor",
    "shell": "opstui.actions.executors.shell:ShellExecutor",
    "prometheus": "opstui.actions.executors.prometheus:PrometheusExecutor",
    "watch": "opstui.actions.executors.watch:WatchExecutor",
    "manual": "opstui.actions.executors.manual:ManualExecutor",
    "redis": "opstui.actions.executors.redis:RedisExecutor",
    "sql": "opstui.actions.executors.sql:SqlExecutor",
    "ecs": "opstui.actions.executors.ecs:EcsExecutor",
}
