/*
 * PBFT (Castro & Liskov, OSDI'99): normal case and one view change, n = 4, f = 1.
 *
 * Replica 0 is Byzantine and the primary of view 0; replicas 1..3 are correct; replica 1 is the
 * primary of view 1. One sequence number, two requests: R (the correct client's) and X (a valid
 * request the Byzantine primary may assign to the same sequence number instead, or as well).
 *
 * Messages from correct replicas are broadcast flags that stay set (a sent message can be delivered
 * at any later time; the interleaving decides when a replica acts on it). The Byzantine replica's
 * messages are chosen once, up front, in any combination: pre-prepares of R and/or X per
 * recipient (equivocation), commits and prepares for either value, a view-change or not, claiming
 * any prepared value it can prove (a certificate needs the matching prepares of 2f correct
 * backups, whose signatures it cannot forge). All silent is one of the combinations.
 *
 * Checked:
 *  - agreement (assert at every commit): no two correct replicas commit different requests at the
 *    sequence number, and no replica commits a different one in view 1 than in view 0;
 *  - progress (assert in `Progress`, a bounded progress check): every variable only grows, so the
 *    state graph is acyclic and every run is finite; `timeout` is executable exactly in the final
 *    states, where no process can move. There at least f+1 correct replicas have committed one
 *    request (the client's f+1 matching replies), and if the Byzantine replica sent nothing
 *    (a silent primary, replaced by the view change), every correct replica has committed R.
 *    Timers may fire at any moment in view 0 (asynchrony); view 1 has a correct primary and no
 *    further view change (the synchronous period PBFT's liveness assumes).
 *
 * Variants for the test that shows the checker can fail:
 *   -DPQ=1 -DCQ=2     quorum 2f instead of 2f+1 (pre-prepare + 2f-1 prepares; 2f commits)
 *   -DIGNORE_PROOFS   the new primary ignores the prepared proofs in the view-changes
 *   -DVCQ=4           the new primary waits for 2f+2 view-changes (progress fails)
 */

#define F 1
#ifndef PQ
#define PQ (2*F)        /* matching prepares from distinct backups, with the pre-prepare: prepared */
#endif
#ifndef CQ
#define CQ (2*F+1)      /* matching commits: committed */
#endif
#ifndef VCQ
#define VCQ (2*F+1)     /* view-changes the new primary needs */
#endif
#define R 1
#define X 2
#define P1 1            /* primary of view 1 */

/* index helpers: (view, sender, value) -> flat index */
#define IX(v, s, val) (((v)*4 + (s))*3 + (val))

bool prep[24];          /* prepare(v, s, val) from correct s */
bool com[24];           /* commit(v, s, val) from correct s */
bool byzPP[12];         /* byzantine pre-prepare (view 0) to replica s of val: [s*3+val] */
bool byzPrep1;          /* byzantine prepare in view 1 (a backup there) for the new-view's value: */
bool byzCom1;           /* votes for another value in view 1 are ignored by every correct replica */
bool byzCom0[3];        /* byzantine commit in view 0: [val] */
bool byzVC;             /* byzantine sends a view-change for view 1 */
bool byzSilent;

byte view[4];
byte acc[4];            /* pre-prepare accepted in the current view (0: none) */
byte pv[4];             /* value prepared in view 0 (goes into the view-change) */
bool cdone[8];          /* committed in view v: [v*4+i] */
byte committed[4];
bool vc[4];             /* view-change for view 1 sent by correct replica */
bool nvSent;
byte nvVal;

/* matching prepares from backups (replica 1 is a backup in view 0 only and sends none in view 1) */
#define NPREP(v, val) (prep[IX(v, 1, val)] + prep[IX(v, 2, val)] + prep[IX(v, 3, val)] + ((v) == 1 && byzPrep1 && (val) == nvVal))
#define NCOM(v, val) (com[IX(v, 1, val)] + com[IX(v, 2, val)] + com[IX(v, 3, val)] + ((v) == 0 && byzCom0[val]) + ((v) == 1 && byzCom1 && (val) == nvVal))
/* view-changes seen by replica i from the others */
#define NVC(i) (byzVC + ((i) != 1 && vc[1]) + ((i) != 2 && vc[2]) + ((i) != 3 && vc[3]))

inline doCommit(i, val) {
  assert(committed[1] == 0 || committed[1] == val);
  assert(committed[2] == 0 || committed[2] == val);
  assert(committed[3] == 0 || committed[3] == val);
  committed[i] = val
}

/* a further claimed value: taken if none yet; if it differs (only with broken quorums), either */
inline pick(c) {
  if
  :: c != 0 && m == 0 -> m = c
  :: c != 0 && m != 0 && c != m -> if :: m = c :: skip fi
  :: else -> skip
  fi
}

inline startViewChange(i) {
  view[i] = 1; acc[i] = 0; vc[i] = 1
}

/* a view-change claim the Byzantine replica can back with 2f correct prepares in view 0 */
#define PROVABLE(val) (NPREP(0, val) >= PQ)

proctype Replica(byte i) {
  byte m, e, claim, c1, c2, c3;
end:
  do
  /* view 0: accept the (possibly equivocating) pre-prepare, send prepare */
  :: atomic { view[i] == 0 && acc[i] == 0 && byzPP[i*3 + R] -> acc[i] = R; prep[IX(0, i, R)] = 1 }
  :: atomic { view[i] == 0 && acc[i] == 0 && byzPP[i*3 + X] -> acc[i] = X; prep[IX(0, i, X)] = 1 }
  /* view 1: the new-view's pre-prepare; backups send prepare */
  :: atomic { view[i] == 1 && acc[i] == 0 && nvSent && i != P1 -> acc[i] = nvVal; prep[IX(1, i, nvVal)] = 1 }
  /* prepared: send commit */
  :: atomic { acc[i] != 0 && !com[IX(view[i], i, acc[i])] && NPREP(view[i], acc[i]) >= PQ ->
       com[IX(view[i], i, acc[i])] = 1;
       if :: view[i] == 0 -> pv[i] = acc[i] :: else -> skip fi }
  /* committed */
  :: atomic { acc[i] != 0 && com[IX(view[i], i, acc[i])] && !cdone[view[i]*4 + i] && NCOM(view[i], acc[i]) >= CQ ->
       cdone[view[i]*4 + i] = 1; doCommit(i, acc[i]) }
  /* view-change timer (only while the request is pending) */
  :: atomic { view[i] == 0 && committed[i] == 0 -> startViewChange(i) }
  /* f+1 view-changes from others: join */
  :: atomic { view[i] == 0 && NVC(i) >= F+1 -> startViewChange(i) }
  /* new primary: new-view from 2f+1 view-changes (choose which one to leave out) */
  :: atomic { i == P1 && view[i] == 1 && !nvSent && byzVC + vc[1] + vc[2] + vc[3] >= VCQ ->
       if
       :: byzVC && vc[2] && vc[3] -> e = 1     /* leaving out its own is not needed but allowed */
       :: vc[1] && vc[2] && vc[3] -> e = 0
       :: byzVC && vc[1] && vc[3] -> e = 2
       :: byzVC && vc[1] && vc[2] -> e = 3
       fi;
         c1 = 0; c2 = 0; c3 = 0;
         if :: e != 1 -> c1 = pv[1] :: else -> skip fi;
         if :: e != 2 -> c2 = pv[2] :: else -> skip fi;
         if :: e != 3 -> c3 = pv[3] :: else -> skip fi;
         claim = 0;
         if
         :: e != 0 ->
           if
           :: PROVABLE(R) -> claim = R
           :: PROVABLE(X) -> claim = X
           :: claim = 0
           fi
         :: else -> skip
         fi;
         /* the proofs all come from view 0: take any claimed value (they agree unless quorums are broken) */
         m = 0;
         if :: c1 != 0 -> m = c1 :: else -> skip fi;
         pick(c2); pick(c3); pick(claim);
#ifdef IGNORE_PROOFS
         m = 0;
#endif
         if :: m == 0 -> nvVal = R :: else -> nvVal = m fi;
         nvSent = 1;
         acc[i] = nvVal;
         m = 0; e = 0; claim = 0; c1 = 0; c2 = 0; c3 = 0   /* keep the state vector canonical */ }
  od
}

active proctype Progress() {
  timeout ->
  assert((committed[1] != 0) + (committed[2] != 0) + (committed[3] != 0) >= F+1);
  assert(!byzSilent || (committed[1] == R && committed[2] == R && committed[3] == R))
}

init {
  atomic {
    /* the Byzantine replica's messages: any combination */
    if :: byzPP[1*3 + R] = 1 :: skip fi;
    if :: byzPP[1*3 + X] = 1 :: skip fi;
    if :: byzPP[2*3 + R] = 1 :: skip fi;
    if :: byzPP[2*3 + X] = 1 :: skip fi;
    if :: byzPP[3*3 + R] = 1 :: skip fi;
    if :: byzPP[3*3 + X] = 1 :: skip fi;
    if :: byzCom0[R] = 1 :: skip fi;
    if :: byzCom0[X] = 1 :: skip fi;
    if :: byzCom1 = 1 :: skip fi;
    if :: byzPrep1 = 1 :: skip fi;
    if :: byzVC = 1 :: skip fi;
    byzSilent = !(byzPP[4] || byzPP[5] || byzPP[7] || byzPP[8] || byzPP[10] || byzPP[11] ||
                  byzCom0[R] || byzCom0[X] || byzCom1 || byzPrep1 || byzVC);
    run Replica(1); run Replica(2); run Replica(3)
  }
}
