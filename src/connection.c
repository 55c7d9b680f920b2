/*-------------------------------------------------------------------------
 *
 * connection.c
 *		  Connections to MySQL sources: the per-backend cache, interruptible
 *		  network waits, streaming results, and cleanup when a transaction
 *		  aborts.
 *
 * Every call into MariaDB Connector/C that may touch the network uses its
 * non-blocking API (mysql_*_start/_cont).  Whenever the library would
 * block we wait on its socket and on our latch together, so a cancel,
 * statement_timeout or postmaster death is noticed at once.  A statement
 * that is still running on MySQL when our transaction aborts is killed
 * from a second connection (KILL QUERY), and its connection is dropped:
 * a connection in an unknown state is never reused.  That KILL is bounded
 * by KILL_TIMEOUT_MS, so an abort never waits on a frozen server.
 *
 * A read has no time limit of its own by default (read_timeout 0): a query
 * may rightly take long before its first row.  But when no data has come
 * for STALL_CHECK_SECS, a second connection checks that the server still
 * answers; a server that does not answer within connect_timeout is frozen
 * or cut off, and the read fails, naming how long it waited.
 *
 * Connections are cached per (server, user) for the life of the backend,
 * like postgres_fdw's, and re-made when the server or user mapping
 * options change.
 *
 * A role that is not a superuser proves its own password: it needs one in
 * its user mapping, and never connects through a Unix socket, where
 * MariaDB's unix_socket plugin would take it for the PostgreSQL server's
 * OS user; a superuser may waive both with password_required 'false'.
 *
 * IDENTIFICATION
 *		  src/connection.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include <errmsg.h>
#include <mysqld_error.h>

#include "source.h"

/* Connection state, as seen by the abort callbacks */
#define CONN_IDLE		0		/* connected, nothing in flight */
#define CONN_BUSY		1		/* a statement or result stream in flight */
#define CONN_BROKEN		2		/* connecting, or failed: close, don't kill */

/* Bound on the whole of the cleanup connection that sends KILL QUERY */
#define KILL_TIMEOUT_MS		400

/* Silence on a busy read (read_timeout 0) after which the server is checked */
#define STALL_CHECK_SECS	20

typedef struct ConnCacheKey
{
	Oid			serverid;
	Oid			userid;
} ConnCacheKey;

/*
 * A connection to one source as one user: the connection cache's entry.
 * A connection that is busy has a statement or an unfinished result stream
 * in flight; if the transaction aborts while it is busy, the remote
 * statement is killed and the connection dropped.
 */
struct SourceConnection
{
	ConnCacheKey key;			/* hash key: (server, user) */
	MYSQL	   *mysql;			/* NULL if not connected */
	int			state;			/* CONN_IDLE, CONN_BUSY or CONN_BROKEN */
	SubTransactionId busy_subid;	/* the subtransaction it became busy in */
	MYSQL_RES  *res;			/* the open result stream, if any */
	char		server_name[NAMEDATALEN];
	char	   *endpoint;		/* "host:port" or socket path, for messages */
	SourceOptions *opts;		/* in the connection's own memory context */
	MemoryContext cxt;			/* holds opts and endpoint */
	unsigned long thread_id;	/* MySQL connection id, for KILL QUERY */
	bool		invalidated;	/* options changed: reconnect when idle */
	bool		io_timed_out;	/* the library's read or write timeout passed */
	bool		cleanup;		/* sends a KILL: bounded by its deadline alone,
								 * and goes on if the postmaster died */
	uint32		server_hashvalue;
	uint32		mapping_hashvalue;
};

static HTAB *ConnectionHash = NULL;

static void init_connection_cache(void);
static bool idle_connection_alive(SourceConnection *conn);
static void open_connection(SourceConnection *conn, ForeignServer *server,
							UserMapping *mapping);
static void close_connection(SourceConnection *conn);
static void kill_remote_query(SourceConnection *conn);
static MYSQL *side_connect(SourceConnection *conn, TimestampTz deadline, bool cleanup,
						   bool *ok);
static bool source_answers(SourceConnection *conn);
static int	wait_for_source(SourceConnection *conn, int status,
							TimestampTz deadline);
static int	source_sqlstate(unsigned int code, bool connecting);
static void report_source_error(SourceConnection *conn, const char *doing)
			pg_attribute_noreturn();
static void end_unfinished_connections(SubTransactionId since);
static void xact_callback(XactEvent event, void *arg);
static void subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							 SubTransactionId parentSubid, void *arg);
static void inval_callback(Datum arg, int cacheid, uint32 hashvalue);

static void
init_connection_cache(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(ConnCacheKey);
	ctl.entrysize = sizeof(SourceConnection);
	ConnectionHash = hash_create("etl_stream connections", 8, &ctl,
								 HASH_ELEM | HASH_BLOBS);

	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, inval_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, inval_callback, (Datum) 0);
}

/*
 * The connection for a server as the given user: the cached one if it is
 * healthy and its options did not change, else a new one.
 */
SourceConnection *
connect_source(ForeignServer *server, Oid userid)
{
	UserMapping *mapping;
	ConnCacheKey key;
	SourceConnection *conn;
	bool		found;

	if (ConnectionHash == NULL)
		init_connection_cache();

	mapping = GetUserMapping(userid, server->serverid);

	key.serverid = server->serverid;
	key.userid = userid;
	conn = hash_search(ConnectionHash, &key, HASH_ENTER, &found);
	if (!found)
	{
		memset(conn, 0, sizeof(SourceConnection));
		conn->key = key;
		conn->state = CONN_IDLE;
	}

	if (conn->mysql != NULL && conn->state == CONN_BUSY)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("connection to server \"%s\" is busy with another statement",
						server->servername)));

	/*
	 * Options changed, a leftover from a failure, or the server closed the
	 * idle connection (wait_timeout, a restart, a failover): start again.
	 */
	if (conn->mysql != NULL &&
		(conn->invalidated || conn->state != CONN_IDLE ||
		 !idle_connection_alive(conn)))
		close_connection(conn);

	if (conn->mysql == NULL)
		open_connection(conn, server, mapping);

	return conn;
}

const SourceOptions *
source_options(SourceConnection *conn)
{
	return conn->opts;
}

const char *
source_server_version(SourceConnection *conn)
{
	return mysql_get_server_info(conn->mysql);
}

/* Rows the last statement changed */
uint64
source_affected_rows(SourceConnection *conn)
{
	return (uint64) mysql_affected_rows(conn->mysql);
}

/*
 * An idle MySQL connection receives nothing unless the server is closing
 * it (an error packet, then FIN or RST), so anything readable on its socket
 * means it is dead.  This costs one poll() and no round trip.
 */
static bool
idle_connection_alive(SourceConnection *conn)
{
	struct pollfd pfd;

	pfd.fd = mysql_get_socket(conn->mysql);
	pfd.events = POLLIN | POLLRDHUP;
	pfd.revents = 0;
	return poll(&pfd, 1, 0) == 0;
}

/*
 * Make the MYSQL handle's options from ours.  Used for the streaming
 * connection and for the short-lived one that kills a query.
 */
static MYSQL *
make_handle(SourceOptions *opts, bool nonblocking, int io_timeout)
{
	MYSQL	   *mysql = mysql_init(NULL);
	unsigned int timeout;
	my_bool		on = 1;

	if (mysql == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while creating a MySQL connection")));

	if (nonblocking)
		mysql_options(mysql, MYSQL_OPT_NONBLOCK, 0);

	timeout = io_timeout > 0 ? io_timeout : opts->connect_timeout;
	mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	timeout = io_timeout > 0 ? io_timeout : opts->read_timeout;
	if (timeout > 0)
		mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &timeout);
	timeout = io_timeout > 0 ? io_timeout : opts->write_timeout;
	if (timeout > 0)
		mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &timeout);

	mysql_options(mysql, MYSQL_SET_CHARSET_NAME, opts->charset);

	if (opts->ssl_mode != SSL_MODE_DISABLE)
	{
		/* any TLS option makes the library try TLS */
		mysql_ssl_set(mysql, opts->ssl_key, opts->ssl_cert, opts->ssl_ca,
					  opts->ssl_capath, opts->ssl_cipher);
		if (opts->ssl_mode >= SSL_MODE_REQUIRED)
			mysql_options(mysql, MYSQL_OPT_SSL_ENFORCE, &on);
		if (opts->ssl_mode >= SSL_MODE_VERIFY_CA)
			mysql_options(mysql, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
	}

	/*
	 * The user's init command first, our session settings last: TIMESTAMP
	 * values must arrive in UTC for convert.c to read them right.
	 */
	if (opts->init_command && opts->init_command[0] != '\0')
		mysql_options(mysql, MYSQL_INIT_COMMAND, opts->init_command);
	mysql_options(mysql, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");

	return mysql;
}

static char *
make_endpoint(SourceOptions *opts)
{
	if (opts->unix_socket)
		return psprintf("%s", opts->unix_socket);
	return psprintf("%s:%d", opts->host, opts->port);
}

/*
 * Whether the connection must prove it used the mapping's password: for
 * non-superusers, unless a superuser set password_required 'false'.
 */
static bool
password_checked(SourceConnection *conn)
{
	return !superuser_arg(conn->key.userid) && conn->opts->password_required;
}

/* Whether the connected session runs over a Unix-domain socket */
static bool
on_unix_socket(MYSQL *mysql)
{
	struct sockaddr_storage addr;
	socklen_t	len = sizeof(addr);
	int			sock = mysql_get_socket(mysql);

	if (sock < 0 || getsockname(sock, (struct sockaddr *) &addr, &len) != 0)
		return true;			/* cannot tell: as if it were */
	return addr.ss_family == AF_UNIX;
}

static void
refuse_unix_socket(SourceConnection *conn)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("password is required"),
			 errdetail("Non-superusers cannot connect to server \"%s\" through a Unix socket (%s), where MariaDB may authenticate the PostgreSQL server's operating system user (unix_socket) instead of the password.",
					   conn->server_name, conn->endpoint),
			 errhint("Connect over TCP (options host and port, not localhost), or have a superuser set password_required 'false' in the user mapping.")));
}

/*
 * Connect with the non-blocking API, waiting on the latch, within the
 * connect timeout for the whole sequence (TCP, TLS, authentication, init
 * commands), not only for the TCP handshake.
 */
static void
open_connection(SourceConnection *conn, ForeignServer *server,
				UserMapping *mapping)
{
	MemoryContext oldcxt;
	MYSQL	   *ret;
	int			status;
	TimestampTz deadline;

	if (conn->cxt == NULL)
		conn->cxt = AllocSetContextCreate(CacheMemoryContext,
										  "etl_stream connection",
										  ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(conn->cxt);

	oldcxt = MemoryContextSwitchTo(conn->cxt);
	conn->opts = palloc(sizeof(SourceOptions));
	get_source_options(server, mapping, conn->opts);
	conn->endpoint = make_endpoint(conn->opts);
	MemoryContextSwitchTo(oldcxt);

	strlcpy(conn->server_name, server->servername, NAMEDATALEN);
	conn->invalidated = false;
	conn->io_timed_out = false;
	conn->server_hashvalue =
		GetSysCacheHashValue1(FOREIGNSERVEROID,
							  ObjectIdGetDatum(server->serverid));
	conn->mapping_hashvalue =
		GetSysCacheHashValue1(USERMAPPINGOID,
							  ObjectIdGetDatum(mapping->umid));

	/*
	 * Like postgres_fdw: a non-superuser must authenticate with a password
	 * of their own, so they cannot borrow the server's OS identity or a
	 * password-less account.  Over a Unix socket MariaDB may authenticate
	 * the PostgreSQL server's OS user (unix_socket) whatever password is
	 * sent, so a non-superuser does not connect through one.
	 */
	if (password_checked(conn))
	{
		if (conn->opts->password == NULL || conn->opts->password[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
					 errmsg("password is required"),
					 errdetail("Non-superusers must provide a password in the user mapping for server \"%s\".",
							   conn->server_name)));
		if (conn->opts->unix_socket != NULL ||
			pg_strcasecmp(conn->opts->host, "localhost") == 0)
			refuse_unix_socket(conn);
	}

	conn->mysql = make_handle(conn->opts, true, 0);
	conn->state = CONN_BROKEN; /* until the connect succeeds */

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   conn->opts->connect_timeout * 1000);

	status = mysql_real_connect_start(&ret, conn->mysql,
									  conn->opts->unix_socket ? NULL : conn->opts->host,
									  conn->opts->user,
									  conn->opts->password,
									  conn->opts->dbname,
									  conn->opts->port,
									  conn->opts->unix_socket,
									  CLIENT_REMEMBER_OPTIONS);
	while (status != 0)
	{
		status = wait_for_source(conn, status, deadline);
		if (status == 0)
		{
			/* our own deadline passed */
			close_connection(conn);
			ereport(ERROR,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 errmsg("could not connect to MySQL server \"%s\" at %s",
							server->servername, conn->endpoint),
					 errdetail("The connection was not established within connect_timeout (%d s).",
							   conn->opts->connect_timeout)));
		}
		status = mysql_real_connect_cont(&ret, conn->mysql, status);
	}
	if (ret == NULL)
	{
		unsigned int code = mysql_errno(conn->mysql);
		char	   *message = pstrdup(mysql_error(conn->mysql));

		close_connection(conn);
		ereport(ERROR,
				(errcode(source_sqlstate(code, true)),
				 errmsg("could not connect to MySQL server \"%s\" at %s",
						server->servername, conn->endpoint),
				 errdetail_internal("MySQL error %u: %s", code, message)));
	}

	/*
	 * Connector/C refuses a server without TLS only when it also verifies
	 * the certificate, so "required" is enforced here.
	 */
	if (conn->opts->ssl_mode >= SSL_MODE_REQUIRED &&
		mysql_get_ssl_cipher(conn->mysql) == NULL)
	{
		close_connection(conn);
		ereport(ERROR,
				(errcode(ERRCODE_SQLSERVER_REJECTED_ESTABLISHMENT_OF_SQLCONNECTION),
				 errmsg("could not connect to MySQL server \"%s\" at %s",
						server->servername, conn->endpoint),
				 errdetail("ssl_mode is \"%s\", but the server does not support TLS.",
						   conn->opts->ssl_mode == SSL_MODE_REQUIRED ? "required" :
						   conn->opts->ssl_mode == SSL_MODE_VERIFY_CA ? "verify_ca" :
						   "verify_identity")));
	}

	/*
	 * A dead peer that never answers would keep us waiting until the user
	 * cancels; keepalives let the kernel notice it within a few minutes.
	 */
	if (conn->opts->unix_socket == NULL)
	{
		int			sock = mysql_get_socket(conn->mysql);
		int			on = 1;
		int			idle = 60;
		int			interval = 10;
		int			count = 6;

		(void) setsockopt(sock, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
		(void) setsockopt(sock, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		(void) setsockopt(sock, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
		(void) setsockopt(sock, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
	}

	/*
	 * Whatever the options said, the library may have chosen a socket (a
	 * default from its environment): the transport it used decides.
	 */
	if (password_checked(conn) && on_unix_socket(conn->mysql))
	{
		close_connection(conn);
		refuse_unix_socket(conn);
	}

	conn->thread_id = mysql_thread_id(conn->mysql);
	conn->state = CONN_IDLE;
}

static void
close_connection(SourceConnection *conn)
{

	if (conn->res != NULL)
	{
		/*
		 * Freeing an unfinished result stream would read all its remaining
		 * rows first; the connection is going away, so detach it.
		 */
		conn->res->handle = NULL;
		mysql_free_result(conn->res);
		conn->res = NULL;
	}
	if (conn->mysql != NULL)
	{
		mysql_close(conn->mysql);
		conn->mysql = NULL;
	}
	conn->thread_id = 0;
	conn->state = CONN_IDLE;
}

/*
 * Close every cached connection to a server (all of them if serverid is
 * InvalidOid).  Returns whether any was open.
 */
bool
disconnect_server(Oid serverid)
{
	HASH_SEQ_STATUS scan;
	SourceConnection *conn;
	bool		any = false;

	if (ConnectionHash == NULL)
		return false;
	hash_seq_init(&scan, ConnectionHash);
	while ((conn = hash_seq_search(&scan)) != NULL)
	{
		if (conn->mysql == NULL)
			continue;
		if (OidIsValid(serverid) && conn->key.serverid != serverid)
			continue;
		if (conn->state == CONN_BUSY)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("cannot close the connection to server \"%s\" because it is in use",
							conn->server_name)));
		close_connection(conn);
		any = true;
	}
	return any;
}

/*
 * The wait of a cleanup connection once the postmaster is gone, when the
 * latch machinery would only report that again: poll() the socket alone,
 * for at most timeout ms (the caller's deadline bounds it).  Returns
 * WaitLatchOrSocket's flags.
 */
static int
poll_source(pgsocket sock, int events, long timeout)
{
	struct pollfd pfd;
	int			rc;

	if (timeout < 0)
		timeout = 0;			/* a cleanup connection always has a deadline */
	pfd.fd = sock;
	pfd.events = 0;
	if (events & WL_SOCKET_READABLE)
		pfd.events |= POLLIN;
	if (events & WL_SOCKET_WRITEABLE)
		pfd.events |= POLLOUT;
	pfd.revents = 0;
	rc = poll(&pfd, sock == PGINVALID_SOCKET ? 0 : 1, (int) timeout);
	if (rc <= 0)
		return WL_TIMEOUT;
	rc = 0;
	if (pfd.revents & (POLLIN | POLLERR | POLLHUP))
		rc |= WL_SOCKET_READABLE;
	if (pfd.revents & (POLLOUT | POLLERR | POLLHUP))
		rc |= WL_SOCKET_WRITEABLE;
	return rc & events;
}

/*
 * Wait until the socket is ready for what the library asked, or its own
 * timeout passes, or our deadline passes (then 0 is returned).  Interrupts
 * are serviced while waiting: a cancel raises an ERROR from here, and the
 * abort callback then kills the remote statement.
 *
 * A busy connection without a read_timeout that waits STALL_CHECK_SECS
 * for data checks that the server still answers (source_answers); if it
 * does not, the wait fails with an ERROR that says how long it waited.  The
 * connection stays busy: the abort kills its statement and drops it.
 */
static int
wait_for_source(SourceConnection *conn, int status, TimestampTz deadline)
{
	int			events = WL_LATCH_SET;
	long		lib_timeout = -1;
	instr_time	start;
	pgsocket	sock = mysql_get_socket(conn->mysql);
	bool		stall_check;
	TimestampTz silent_since;
	TimestampTz next_check;

	if (status & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT))
		events |= WL_SOCKET_READABLE;
	if (status & MYSQL_WAIT_WRITE)
		events |= WL_SOCKET_WRITEABLE;
	if (status & MYSQL_WAIT_TIMEOUT)
		lib_timeout = mysql_get_timeout_value_ms(conn->mysql);
	if (sock == PGINVALID_SOCKET)
		events &= ~(WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE);
	/*
	 * A wait ends the backend at once when the postmaster dies, except the
	 * KILL sent while the backend exits for that very reason: it still gets
	 * its (short) deadline, so that nothing of ours keeps running on MySQL.
	 */
	events |= conn->cleanup ? WL_POSTMASTER_DEATH : WL_EXIT_ON_PM_DEATH;

	stall_check = (conn->state == CONN_BUSY && deadline == 0 &&
				   lib_timeout < 0 && conn->opts != NULL &&
				   conn->opts->read_timeout == 0 &&
				   (status & MYSQL_WAIT_READ) != 0);
	silent_since = GetCurrentTimestamp();
	next_check = TimestampTzPlusMilliseconds(silent_since, STALL_CHECK_SECS * 1000);

	INSTR_TIME_SET_CURRENT(start);
	for (;;)
	{
		long		timeout = lib_timeout;
		int			rc;
		int			result = 0;

		if (stall_check)
			timeout = Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
														  next_check), 0);

		if (lib_timeout >= 0)
		{
			instr_time	now;

			INSTR_TIME_SET_CURRENT(now);
			INSTR_TIME_SUBTRACT(now, start);
			timeout = Max(lib_timeout - (long) INSTR_TIME_GET_MILLISEC(now), 0);
		}
		if (deadline != 0)
		{
			long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
															   deadline);

			if (left <= 0)
				return 0;
			if (timeout < 0 || left < timeout)
				timeout = left;
		}

		CHECK_FOR_INTERRUPTS();
		if (conn->cleanup && !PostmasterIsAlive())
			rc = poll_source(sock, events, timeout);
		else
			rc = WaitLatchOrSocket(MyLatch,
								   events | (timeout >= 0 ? WL_TIMEOUT : 0),
								   sock, timeout, PG_WAIT_EXTENSION);
		rc &= ~WL_POSTMASTER_DEATH;
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		if (rc & WL_SOCKET_READABLE)
			result |= status & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT);
		if (rc & WL_SOCKET_WRITEABLE)
			result |= MYSQL_WAIT_WRITE;
		if (result != 0)
			return result;
		if (rc & WL_TIMEOUT)
		{
			if (deadline != 0 && GetCurrentTimestamp() >= deadline)
				return 0;
			if (stall_check && GetCurrentTimestamp() >= next_check)
			{
				if (!source_answers(conn))
				{
					long		secs;
					int			usecs;

					TimestampDifference(silent_since, GetCurrentTimestamp(),
										&secs, &usecs);
					ereport(ERROR,
							(errcode(ERRCODE_CONNECTION_FAILURE),
							 errmsg("no data from MySQL server \"%s\" at %s for %ld s",
									conn->server_name, conn->endpoint, secs),
							 errdetail("The server did not answer a new connection within connect_timeout (%d s) either: it is frozen or unreachable.",
									   conn->opts->connect_timeout),
							 errhint("With read_timeout 0, the default, a silent server is checked this way every %d s; the server option read_timeout sets a fixed limit instead.",
									 STALL_CHECK_SECS)));
				}
				next_check = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														 STALL_CHECK_SECS * 1000);
				continue;
			}
			if (lib_timeout >= 0)
			{
				conn->io_timed_out = true;
				return MYSQL_WAIT_TIMEOUT;
			}
		}
	}
}

/*
 * Raise the library's last error as ours.  Errors raised by the MySQL
 * server leave the connection usable; client-side errors (lost
 * connection, timeouts) mean the connection is dropped.
 */
static bool
is_client_error(unsigned int code)
{
	return (code >= CR_MIN_ERROR && code <= CR_MAX_ERROR) ||
		code >= 5000;			/* Connector/C's own range */
}

/*
 * The SQLSTATE of a MySQL error: what the condition is in PostgreSQL's
 * terms, so that a run can tell a transient failure (a lost connection, a
 * lock wait timeout, a deadlock, a server gone read-only in a failover)
 * from one that would only fail again (run.c's retries, sync.md).
 */
static int
source_sqlstate(unsigned int code, bool connecting)
{
	switch (code)
	{
		case 1040:				/* ER_CON_COUNT_ERROR */
		case 1203:				/* ER_TOO_MANY_USER_CONNECTIONS */
			return ERRCODE_TOO_MANY_CONNECTIONS;
		case 1049:				/* ER_BAD_DB_ERROR */
			return ERRCODE_UNDEFINED_DATABASE;
		case 1205:				/* ER_LOCK_WAIT_TIMEOUT */
			return ERRCODE_LOCK_NOT_AVAILABLE;
		case 1213:				/* ER_LOCK_DEADLOCK */
			return ERRCODE_T_R_DEADLOCK_DETECTED;
		case 1290:				/* ER_OPTION_PREVENTS_STATEMENT (read_only) */
		case 1836:				/* ER_READ_ONLY_MODE */
			return ERRCODE_READ_ONLY_SQL_TRANSACTION;
		case 1044:				/* ER_DBACCESS_DENIED_ERROR */
		case 1045:				/* ER_ACCESS_DENIED_ERROR */
		case 1698:				/* ER_ACCESS_DENIED_NO_PASSWORD_ERROR */
		case 2059:				/* CR_AUTH_PLUGIN_CANNOT_LOAD */
			return ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
		case 2026:				/* CR_SSL_CONNECTION_ERROR: a certificate, say */
			return ERRCODE_SQLSERVER_REJECTED_ESTABLISHMENT_OF_SQLCONNECTION;
	}
	/* the server could not be reached, or the connection was lost */
	if (is_client_error(code))
		return connecting ? ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION :
			ERRCODE_CONNECTION_FAILURE;
	/* the server answered, and refused */
	return connecting ? ERRCODE_SQLSERVER_REJECTED_ESTABLISHMENT_OF_SQLCONNECTION :
		ERRCODE_FDW_ERROR;
}

static void
report_source_error(SourceConnection *conn, const char *doing)
{
	unsigned int code = mysql_errno(conn->mysql);
	char	   *message = pstrdup(mysql_error(conn->mysql));
	char	   *sqlstate = pstrdup(mysql_sqlstate(conn->mysql));
	bool		client_error = is_client_error(code);

	if (client_error)
	{
		/*
		 * The connection's state is unknown, and a statement in flight (a
		 * read timeout, say) may still be running on MySQL.  The abort this
		 * error causes kills a busy connection's statement and closes it,
		 * or just closes a broken one: the same cleanup as after a cancel.
		 */
		if (conn->state != CONN_BUSY)
			conn->state = CONN_BROKEN;
	}
	else
	{
		/* the server ended the statement or stream: the connection is fine */
		if (conn->res != NULL)
			mysql_free_result(conn->res);
		conn->res = NULL;
		conn->state = CONN_IDLE;
	}

	/* a timeout is named as one, not as the lost connection it leaves */
	if (client_error && conn->io_timed_out)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("no data from MySQL server \"%s\" at %s for %d s while %s",
						conn->server_name, conn->endpoint,
						Max(conn->opts->read_timeout, conn->opts->write_timeout), doing),
				 errdetail_internal("The server's read_timeout is %d s (write_timeout %d s); MySQL error %u (SQLSTATE %s): %s",
									conn->opts->read_timeout, conn->opts->write_timeout,
									code, sqlstate, message)));
	ereport(ERROR,
			(errcode(source_sqlstate(code, false)),
			 errmsg("MySQL server \"%s\" at %s failed while %s",
					conn->server_name, conn->endpoint, doing),
			 errdetail_internal("MySQL error %u (SQLSTATE %s): %s",
								code, sqlstate, message)));
}

/*
 * Send a statement and wait for MySQL's answer; the connection is busy from
 * here on.  Returns the library's result: non-zero for an error.
 */
static int
send_statement(SourceConnection *conn, const char *sql)
{
	int			ret;
	int			status;

	Assert(conn->state == CONN_IDLE && conn->mysql != NULL);
	conn->state = CONN_BUSY;
	conn->busy_subid = GetCurrentSubTransactionId();
	conn->io_timed_out = false;

	status = mysql_real_query_start(&ret, conn->mysql, sql, strlen(sql));
	while (status != 0)
	{
		status = wait_for_source(conn, status, 0);
		status = mysql_real_query_cont(&ret, conn->mysql, status);
	}
	return ret;
}

/*
 * Send a statement and start streaming its result (mysql_use_result: rows
 * are read from the socket one at a time, never buffered whole).  Returns
 * NULL for a statement that has no result set.
 */
MYSQL_RES *
source_query(SourceConnection *conn, const char *sql)
{
	if (send_statement(conn, sql) != 0)
		report_source_error(conn, "running a query");

	conn->res = mysql_use_result(conn->mysql);
	if (conn->res == NULL)
	{
		if (mysql_errno(conn->mysql) != 0)
			report_source_error(conn, "starting to read a result");
		conn->state = CONN_IDLE;	/* no result set: INSERT, SET... */
	}
	return conn->res;
}

/*
 * source_query() for statements that must return rows (SELECT, SHOW).
 */
MYSQL_RES *
source_query_rows(SourceConnection *conn, const char *sql)
{
	MYSQL_RES  *res = source_query(conn, sql);

	if (res == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_NO_SCHEMAS),
				 errmsg("remote statement returned no result set"),
				 errhint("Use etl_stream.execute for statements that return no rows.")));
	return res;
}

/*
 * The next row of the stream, or NULL at its end.  A fetch error is always
 * raised: a result is never cut short silently.
 */
MYSQL_ROW
source_fetch_row(SourceConnection *conn, MYSQL_RES *res)
{
	MYSQL_ROW	row;
	int			status;

	status = mysql_fetch_row_start(&row, res);
	while (status != 0)
	{
		status = wait_for_source(conn, status, 0);
		status = mysql_fetch_row_cont(&row, res, status);
	}
	if (row == NULL && mysql_errno(conn->mysql) != 0)
		report_source_error(conn, "reading rows");
	return row;
}

/*
 * Finish a stream that was read to its end.
 */
void
source_end_result(SourceConnection *conn, MYSQL_RES *res)
{
	
	Assert(conn->res == res);
	mysql_free_result(res);
	conn->res = NULL;
	conn->state = CONN_IDLE;
}

/*
 * Round-trip time of a COM_PING, in milliseconds.
 */
double
source_ping(SourceConnection *conn)
{
		instr_time	start;
	instr_time	end;
	int			ret;
	int			status;

	conn->state = CONN_BUSY;
	conn->busy_subid = GetCurrentSubTransactionId();
	INSTR_TIME_SET_CURRENT(start);
	status = mysql_ping_start(&ret, conn->mysql);
	while (status != 0)
	{
		status = wait_for_source(conn, status, 0);
		status = mysql_ping_cont(&ret, conn->mysql, status);
	}
	INSTR_TIME_SET_CURRENT(end);
	if (ret != 0)
		report_source_error(conn, "answering a ping");
	conn->state = CONN_IDLE;

	INSTR_TIME_SUBTRACT(end, start);
	return INSTR_TIME_GET_MILLISEC(end);
}

/*
 * Connect (or reuse the connection) and time a round trip, in milliseconds.
 */
double
ping_source(ForeignServer *server)
{
	return source_ping(connect_source(server, GetUserId()));
}

/*
 * MySQL's own estimate of the rows a query reads: the "rows" of the first
 * table in its EXPLAIN, or -1 if there is none.  An error MySQL raises for
 * the EXPLAIN itself (a statement it does not explain, say) only makes the
 * estimate unknown; a lost connection is an error as anywhere else.
 */
int64
estimate_source_rows(ForeignServer *server, const char *sql)
{
	SourceConnection *conn = connect_source(server, GetUserId());
	MYSQL_FIELD *fields;
	unsigned int nfields;
	unsigned int col;
	MYSQL_ROW	row;
	int64		estimate = -1;

	if (send_statement(conn, psprintf("EXPLAIN %s", sql)) != 0)
	{
		if (is_client_error(mysql_errno(conn->mysql)))
			report_source_error(conn, "estimating the rows of a query");
		conn->state = CONN_IDLE;
		return -1;
	}
	conn->res = mysql_use_result(conn->mysql);
	if (conn->res == NULL)
	{
		if (mysql_errno(conn->mysql) != 0)
			report_source_error(conn, "starting to read a result");
		conn->state = CONN_IDLE;
		return -1;
	}
	fields = mysql_fetch_fields(conn->res);
	nfields = mysql_num_fields(conn->res);
	for (col = 0; col < nfields; col++)
		if (pg_strcasecmp(fields[col].name, "rows") == 0)
			break;
	while ((row = source_fetch_row(conn, conn->res)) != NULL)
	{
		if (estimate < 0 && col < nfields && row[col] != NULL)
			estimate = strtoll(row[col], NULL, 10);
	}
	source_end_result(conn, conn->res);
	return estimate;
}

/*
 * A second connection to conn's server, made without blocking: every wait
 * is bounded by deadline and serviced like the main connection's (a cancel
 * is noticed, unless interrupts are held, as during an abort).  *ok says
 * whether it connected; the handle is returned either way, for its error,
 * and the caller closes it.
 */
static MYSQL *
side_connect(SourceConnection *conn, TimestampTz deadline, bool cleanup, bool *ok)
{
	SourceOptions *opts = conn->opts;
	SourceConnection side;
	MYSQL	   *ret = NULL;
	int			status;

	memset(&side, 0, sizeof(side));
	side.state = CONN_BROKEN;	/* no stall checks of its own */
	side.cleanup = cleanup;
	for (int attempt = 1;; attempt++)
	{
		side.mysql = make_handle(opts, true, 0);
		status = mysql_real_connect_start(&ret, side.mysql,
										  opts->unix_socket ? NULL : opts->host,
										  opts->user, opts->password, NULL,
										  opts->port, opts->unix_socket, 0);
		while (status != 0)
		{
			status = wait_for_source(&side, status, deadline);
			if (status == 0)
			{
				*ok = false;
				return side.mysql;
			}
			status = mysql_real_connect_cont(&ret, side.mysql, status);
		}
		*ok = (ret != NULL);

		/*
		 * Connector/C's non-blocking reads take EINTR (a signal that reached
		 * the backend mid-handshake) for a lost connection; a server that
		 * answered may be asked again, as long as the deadline allows.
		 */
		if (*ok || mysql_errno(side.mysql) != CR_SERVER_LOST || attempt == 3 ||
			GetCurrentTimestamp() >= deadline)
			return side.mysql;
		mysql_close(side.mysql);
	}
}

/*
 * Whether conn's server answers a new connection within connect_timeout:
 * a server that is slow to send rows but answers is working on the query.
 */
static bool
source_answers(SourceConnection *conn)
{
	bool		ok;
	MYSQL	   *probe;

	probe = side_connect(conn,
						 TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													 conn->opts->connect_timeout * 1000),
						 false, &ok);
	mysql_close(probe);
	return ok;
}

/*
 * Kill the statement running on a busy connection, from a second,
 * short-lived connection.  Runs inside abort processing, so the whole of it
 * is bounded by KILL_TIMEOUT_MS: the local statement must end at once, even
 * when the server is frozen.  Problems are warnings only, and a statement
 * we could not kill ends when MySQL next writes to the connection we close.
 */
static void
kill_remote_query(SourceConnection *conn)
{
	SourceOptions *opts = conn->opts;
	TimestampTz deadline;
	MYSQL	   *killer;
	char		sql[64];
	bool		ok;
	int			ret = 0;
	int			status;

	if (conn->thread_id == 0 || opts == NULL)
		return;

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), KILL_TIMEOUT_MS);
	killer = side_connect(conn, deadline, true, &ok);
	if (ok)
	{
		SourceConnection side;

		memset(&side, 0, sizeof(side));
		side.mysql = killer;
		side.state = CONN_BROKEN;
		side.cleanup = true;
		snprintf(sql, sizeof(sql), "KILL QUERY %lu", conn->thread_id);
		status = mysql_real_query_start(&ret, killer, sql, strlen(sql));
		while (status != 0 && ok)
		{
			status = wait_for_source(&side, status, deadline);
			if (status == 0)
				ok = false;
			else
				status = mysql_real_query_cont(&ret, killer, status);
		}
		if (ok && ret != 0 && mysql_errno(killer) != ER_NO_SUCH_THREAD)
			ok = false;			/* refused; "already gone" is fine */
	}
	if (!ok)
		ereport(WARNING,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not cancel the query running on MySQL server \"%s\" at %s",
						conn->server_name, conn->endpoint),
				 mysql_errno(killer) != 0 ?
				 errdetail_internal("MySQL error %u: %s",
									mysql_errno(killer), mysql_error(killer)) :
				 errdetail("The server did not answer within %d ms.", KILL_TIMEOUT_MS),
				 errhint("MySQL ends the query when it next writes to the connection, which is closed.")));
	mysql_close(killer);
}

/*
 * End every connection that is not idle: kill the statement a busy one has
 * running on MySQL, and close it, as a broken one.  After an abort no
 * statement of ours may go on running on MySQL and no connection in an
 * unknown state may stay in the cache; at commit, a stream still open was
 * abandoned by its caller and cannot be finished later.
 *
 * since: a subtransaction's abort ends only the streams it (or one inside
 * it) began, and the broken connections; a stream of the parent goes on
 * (a landing rolls back the conversion of a bad row and reads on).
 * InvalidSubTransactionId: all.
 */
static void
end_unfinished_connections(SubTransactionId since)
{
	HASH_SEQ_STATUS scan;
	SourceConnection *conn;

	if (ConnectionHash == NULL)
		return;
	hash_seq_init(&scan, ConnectionHash);
	while ((conn = hash_seq_search(&scan)) != NULL)
	{
		if (conn->mysql == NULL || conn->state == CONN_IDLE)
			continue;
		if (conn->state == CONN_BUSY && since != InvalidSubTransactionId &&
			conn->busy_subid < since)
			continue;
		if (conn->state == CONN_BUSY)
			kill_remote_query(conn);
		close_connection(conn);
	}
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			end_unfinished_connections(InvalidSubTransactionId);
			break;
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			end_unfinished_connections(InvalidSubTransactionId);
			break;
		default:
			break;
	}
}

static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		end_unfinished_connections(mySubid);
}

/*
 * The server or user mapping changed: connections made with the old
 * options are re-made the next time they are needed.
 */
static void
inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	SourceConnection *conn;

	hash_seq_init(&scan, ConnectionHash);
	while ((conn = hash_seq_search(&scan)) != NULL)
	{
		if (conn->mysql == NULL)
			continue;
		if (hashvalue == 0 ||
			(cacheid == FOREIGNSERVEROID &&
			 conn->server_hashvalue == hashvalue) ||
			(cacheid == USERMAPPINGOID &&
			 conn->mapping_hashvalue == hashvalue))
			conn->invalidated = true;
	}
}
