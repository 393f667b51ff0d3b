/** The subset of a pino logger the exporters use; libraries stay silent unless given one. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export const silentLogger: Logger = {
  debug: () => {},
  warn: () => {},
};
