"""The defaults a user can change, in one place: the settings file, the agent, the
backends, the CLI's options and their help texts all read them from here."""

N_CTX = 8192  # tokens of context, capped by what the model was trained with
MAX_NEW_TOKENS = 512  # per reply, as the seed's chat demo
TEMPERATURE = 0.0  # greedy, as the seed's demo
MAX_ACTIONS = 6  # code runs per user message; the seed used 3, self-debugging often needs a few more
ACTION_TIMEOUT_S = 60.0  # seconds one code run may take before it is interrupted
# Of an action's output the model reads back. About 1,000 tokens: enough for a traceback or a
# DataFrame preview, small enough that six turns fit an 8k context beside the system prompt.
OBSERVATION_CHARS = 4000
# Other conversations' KV state, kept so that going back to one does not read it again:
# a 2,000-token conversation of the 7B model is about 260 MB.
KV_CACHE_RAM_MB = 1024
KV_CACHE_DISK_MB = 4096
