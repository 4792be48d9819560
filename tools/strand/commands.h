/* commands.h — the subcommands of the strand program; one file each. Each
 * returns the process exit status. */
#ifndef STRAND_TOOL_COMMANDS_H
#define STRAND_TOOL_COMMANDS_H

int strand_cmd_demo(int argc, char **argv); /* demo.c */
int strand_cmd_info(int argc, char **argv); /* info.c */
int strand_cmd_run(int argc, char **argv);   /* run.c */
int strand_cmd_check(int argc, char **argv); /* check.c */
int strand_cmd_stress(int argc, char **argv); /* stress.c */
int strand_cmd_bench(int argc, char **argv);  /* bench.c */

#endif
