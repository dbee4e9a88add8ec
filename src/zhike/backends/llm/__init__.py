"""LLM backends behind one interface (base.ChatModel): the embedded transformers model and OpenAI-compatible servers."""
