/* Leveled logging to stderr or syslog. Thread-safe; one line per message. */
#ifndef PEERNFS_LOG_H
#define PEERNFS_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARNING = 4, LOG_LVL_NOTICE = 5, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

extern enum log_level log_threshold;

void log_init(const char *ident, enum log_level threshold, bool use_syslog);
/* "debug", "info", "notice", "warning", "error" -> level; -1 when unknown. */
int log_level_parse(const char *name);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_enabled(lvl) ((lvl) <= log_threshold)
#define LOG_AT(lvl, ...) do { if (log_enabled(lvl)) log_msg(lvl, __VA_ARGS__); } while (0)
#define log_err(...) LOG_AT(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_LVL_WARNING, __VA_ARGS__)
#define log_notice(...) LOG_AT(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
