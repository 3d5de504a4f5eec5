/** wandb's command template when a sweep has no `command`: the controller hands it out, the agent expands it. */
export const DEFAULT_COMMAND: readonly string[] = ['${env}', '${interpreter}', '${program}', '${args}'];
