import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.graphdb.QueryExecutionException;

/**
 * A Neo4j Community server in one JVM: the database with its Bolt connector, configured by the
 * properties file graph_store/embedded_neo4j.py writes. Users and passwords arrive on standard
 * input, one "user<TAB>password" a line, so no secret shows in the process list or a file here.
 *
 * Usage: java -cp CLASSPATH Neo4jServer.java HOME CONFIG
 */
public class Neo4jServer {
    public static void main(String[] args) throws Exception {
        try {
            serve(args);
        } catch (Exception failed) {
            // Neo4j's own threads would keep a half-started JVM alive: exit, so the caller sees it.
            failed.printStackTrace();
            System.exit(1);
        }
    }

    private static void serve(String[] args) throws Exception {
        DatabaseManagementService service = new DatabaseManagementServiceBuilder(Path.of(args[0]))
            .loadPropertiesFromFile(Path.of(args[1]))
            .build();
        CountDownLatch stopped = new CountDownLatch(1);
        // SIGTERM and SIGINT shut the databases down cleanly, checkpointing the store.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            service.shutdown();
            stopped.countDown();
        }));
        GraphDatabaseService system = service.database("system");
        var users = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line = users.readLine(); line != null; line = users.readLine()) {
            String[] user = line.split("\t", 2);
            setPassword(system, user[0], user[1]);
        }
        System.out.println("donor-match: Neo4j ready");
        System.out.flush();
        stopped.await();
    }

    private static void setPassword(GraphDatabaseService system, String user, String password) {
        Map<String, Object> params = Map.of("user", user, "password", password);
        boolean exists = system.executeTransactionally(
            "SHOW USERS YIELD user WHERE user = $user RETURN count(*) AS n", params,
            result -> ((Number) result.next().get("n")).longValue() > 0);
        if (!exists) {
            system.executeTransactionally(
                "CREATE USER $user SET PASSWORD $password CHANGE NOT REQUIRED", params);
            return;
        }
        try {
            system.executeTransactionally(
                "ALTER USER $user SET PASSWORD $password CHANGE NOT REQUIRED", params);
        } catch (QueryExecutionException unchanged) {
            // Neo4j refuses to set the password a user already has (the caller checked the length,
            // the other argument error): nothing to change.
            if (!unchanged.getStatusCode().equals("Neo.ClientError.Statement.ArgumentError")) {
                throw unchanged;
            }
        }
    }
}
