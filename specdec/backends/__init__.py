"""Engines outside this process that bench and eval both drive: the vLLM client (`vllm_client`) and the
worker it starts in vLLM's own venv (`vllm_worker`, standard library + vLLM only, run by file path)."""
