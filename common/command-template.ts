/** wandb's command template when a sweep has no `command`: the controller hands it out, the agent expands it. */
export const DEFAULT_COMMAND: readonly string[] = ['${env}', '${interpreter}', '${program}', '${args}'];

/**
 * The template a sweep's trials run with: its `command`, or wandb's default when it has none or an
 * empty one (as wandb does). The config check, the controller and the agent all ask here.
 */
export function commandTemplate(command: readonly string[] | undefined): readonly string[] {
  return command && command.length > 0 ? command : DEFAULT_COMMAND;
}
